"""MEXC's replies, classified once into the application's exchange errors.

The application knows five kinds (application.errors): NotYetOpen, RateLimited, ClockSkew,
AmbiguousOutcome, OrderRefused. This module maps MEXC's error codes onto them and adds the
few finer kinds the adapter needs, each a subclass of one of the five so that a caller who
only knows the application's kinds still does the right thing:

- `NotSent` (a RateLimited): the request never left this process (the circuit is open, the
  local budget is spent, the connection could not be made). Nothing was placed, so sending
  again later is safe; it must never be reported as ambiguous.
- `Unreachable` (a NotSent): no connection could be made; the message says why (DNS, refused,
  timeout, TLS).
- `CircuitOpen` (a NotSent): the endpoint group's breaker is open (it names the last failure).
- `UnknownOrder` (an OrderRefused, MEXC -2011): query and cancel turn it into None.
- a reused client order id is the application's OrderAlreadyExists (resolved by query).
- `UnexpectedReply` (an AmbiguousOutcome): a reply we could not read. For an order this is
  ambiguous by nature: the exchange may have placed it before the reply went wrong.
"""

from __future__ import annotations

import socket
import ssl
from datetime import timedelta

from application.errors import AmbiguousOutcome, ClockSkew, NotYetOpen, OrderAlreadyExists, OrderRefused, RateLimited

NOT_YET_OPEN = 10007
TIMESTAMP_OUTSIDE_RECV_WINDOW = 700003
UNKNOWN_ORDER = -2011
# A reused newClientOrderId. MEXC documents no code for it: -2010 is the Binance-family code
# (and what the fake sends); a message naming a duplicate is recognised too.
DUPLICATE_ORDER_CODES = frozenset({-2010})

# Final refusals (FACTS.md): fail fast with MEXC's code and message, never retry.
REFUSED_CODES: dict[int, str] = {
    10101: "insufficient balance",
    30002: "below the minimum transaction amount",
    30003: "above the maximum transaction amount",
    30004: "insufficient position",
    30005: "oversold",
    30010: "no valid trade price",
    30014: "invalid symbol",
    30016: "trading disabled",
    30018: "market orders disabled",
    30019: "API market orders disabled",
    30020: "no permission for this symbol",
    30021: "invalid symbol",
    30029: "too many open orders",
    30041: "order type not allowed",
    70011: "the pair bans API trading",
    700001: "API key format invalid",
    700002: "signature invalid",
    602: "signature invalid",
    700005: "recvWindow too large",
    700006: "IP not whitelisted",
    700007: "no permission for this endpoint",
    10072: "invalid API key",
}

# exchangeInfo / ticker for a symbol the exchange does not know (symbol_rules -> NotFound).
INVALID_SYMBOL_CODES = frozenset({30014, 30021, -1121})


class NotSent(RateLimited):
    """The request never left: nothing was placed. Safe to send again after `retry_after`."""

    code = "not-sent"


class Unreachable(NotSent):
    """MEXC could not be reached: no connection was made (the host name does not resolve, the
    connection was refused or timed out, TLS failed). The message says which and where."""

    code = "unreachable"


def why_unreachable(exc: BaseException, connect_timeout: float) -> str:
    """Why a connection could not be made, in a person's words, from the exception chain of a
    failed connect (httpx's or the order lane's)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for error in chain:
        if isinstance(error, socket.gaierror):
            return f"DNS: the host name does not resolve ({error.strerror or error})"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused (nothing listens there)"
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"TLS: the server's certificate is not trusted ({error.verify_message or error})"
        if isinstance(error, ssl.SSLError) and not isinstance(error, (ssl.SSLWantReadError, ssl.SSLWantWriteError)):
            return f"TLS: the handshake failed ({error.reason or error})"
    for error in chain:
        if isinstance(error, TimeoutError) or "Timeout" in type(error).__name__:
            during = " (during the TLS handshake)" if any(isinstance(e, ssl.SSLError) for e in chain) else ""
            return f"timeout: no connection within {connect_timeout:g} s{during}"
    for error in chain:
        if isinstance(error, OSError) and error.strerror:
            return f"{error.strerror} ({type(error).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class CircuitOpen(NotSent):
    """The endpoint group's circuit breaker is open: failing fast without sending."""

    code = "circuit-open"


class UnknownOrder(OrderRefused):
    """MEXC -2011: no order with that id (query and cancel answer None)."""

    code = str(UNKNOWN_ORDER)


class UnexpectedReply(AmbiguousOutcome):
    """A reply that could not be read (malformed JSON, wrong shape)."""

    code = "unexpected-reply"


def classify(code: int | str | None, message: str, http_status: int) -> Exception:
    """The error for a MEXC error body `{"code": N, "msg": ...}` (not for 429/418/5xx)."""
    number = _as_int(code)
    text = f"MEXC {code if code is not None else http_status}: {message}" if message else f"MEXC {code}"
    if number == NOT_YET_OPEN:
        return NotYetOpen(text, str(number))
    if number == TIMESTAMP_OUTSIDE_RECV_WINDOW:
        return ClockSkew(text, str(number))
    if number == UNKNOWN_ORDER:
        return UnknownOrder(text, str(number))
    if (number is not None and number in DUPLICATE_ORDER_CODES) or _names_a_duplicate(message):
        # Ours, sent earlier (a lost reply, another worker): the caller resolves it by query.
        return OrderAlreadyExists(text, str(number) if number is not None else None)
    if number is not None and number in REFUSED_CODES:
        if not message:
            text = f"MEXC {number}: {REFUSED_CODES[number]}"
        return OrderRefused(text, str(number))
    # Any other 4xx is still a refusal by the exchange: final, nothing was placed.
    label = str(number) if number is not None else f"http-{http_status}"
    return OrderRefused(text if code is not None else f"MEXC HTTP {http_status}: {message or 'refused'}", label)


def rate_limited(http_status: int, retry_after: timedelta) -> RateLimited:
    what = "banned (418)" if http_status == 418 else "rate limited (429)"
    return RateLimited(f"MEXC {what}: retry after {retry_after.total_seconds():g} s", retry_after, str(http_status))


def _names_a_duplicate(message: str) -> bool:
    text = message.lower()
    return "duplicate" in text or ("already exist" in text and "not" not in text)


def _as_int(code: int | str | None) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str):
        try:
            return int(code.strip())
        except ValueError:
            return None
    return None
