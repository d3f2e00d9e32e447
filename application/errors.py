"""Errors the use cases and ports speak. Adapters raise these; entrypoints translate them."""

from __future__ import annotations

from datetime import timedelta


class ApplicationError(Exception):
    """Something a caller can act on went wrong."""


class NotFound(ApplicationError):
    """No such target, position or stream."""


class ConcurrencyConflict(ApplicationError):
    """Someone else appended to the stream since we loaded it."""

    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None = None) -> None:
        detail = f", it is at {actual_version}" if actual_version is not None else ""
        super().__init__(f"stream {stream_id} moved on: expected version {expected_version}{detail}")
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class ConfigurationError(ApplicationError):
    """A setting or an input file is not usable. The message names it."""


class AccountUnavailable(ApplicationError):
    """No exchange account can carry this order (e.g. a live order on a paper-only worker)."""


class InvalidInput(ApplicationError):
    """A caller's input is not acceptable (HTTP 400). The message names the field and the rule,
    never the value (it may be a secret)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class SubscriptionLost(ApplicationError):
    """A live event subscription was dropped (too slow, or its connection broke): events may
    have been missed. Catch up from the event store, then subscribe again."""


class ListingFeedUnavailable(ApplicationError):
    """The listing feed could not be read this time (HTTP/transport error or an unreadable
    payload). Retry on the next poll; `feed` says which endpoint ("calendar"/"symbols")."""

    def __init__(self, feed: str, reason: str) -> None:
        super().__init__(f"MEXC {feed} feed unavailable: {reason}")
        self.feed = feed
        self.reason = reason


# --- exchange replies, classified ---------------------------------------------------------

class ExchangeError(ApplicationError):
    """The exchange answered with an error (or did not answer)."""

    code: str = "exchange"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class NotYetOpen(ExchangeError):
    """The pair is not (yet) tradable by API (MEXC 10007): retry until the snipe deadline."""

    code = "10007"


class RateLimited(ExchangeError):
    """429/418: wait at least `retry_after` before the next call."""

    code = "429"

    def __init__(self, message: str, retry_after: timedelta, code: str | None = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after


class ClockSkew(ExchangeError):
    """700003: our timestamp fell outside recvWindow; re-sync the clock and retry."""

    code = "700003"


class AmbiguousOutcome(ExchangeError):
    """Timeout or 5xx: the order may or may not exist. Resolve by client order id before any resend."""

    code = "ambiguous"


class OrderRefused(ExchangeError):
    """A final refusal (balance, disabled market orders, invalid symbol...): fail fast with the reason."""

    code = "refused"


class OrderAlreadyExists(OrderRefused):
    """The exchange already holds an order with this client order id: ours, sent earlier
    (by us before a lost reply, or by another worker). Never a failure: resolve by query."""

    code = "duplicate"


class ExchangeDataUnreadable(ExchangeError):
    """The exchange answered with data we cannot read (e.g. a malformed symbol list). Trading
    on it would be guessing: the order is not sent, and the reason is recorded."""

    code = "unreadable"
