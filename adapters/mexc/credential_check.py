"""CredentialChecker on MEXC: does this key pair work, and may it trade spot?

Read-only calls only: ping, server time (to sign with the exchange's clock), and the signed
GET /api/v3/account, whose reply says whether the keys are accepted and whether the account
may trade (`canTrade`, `permissions`). No order, not even order/test, is sent. The secret goes
into the request signature only; the details returned are safe to show.
"""

from __future__ import annotations

from typing import Any

from adapters.mexc.rest import MexcRestClient
from application.credentials import ApiCredentials, CredentialCheckResult
from application.errors import ApplicationError, ExchangeError, OrderRefused

# MEXC codes that mean "these keys are wrong", with a reason a person can act on.
_KEY_REFUSALS = {
    "700001": "API key not accepted",
    "10072": "API key not recognised by MEXC",
    "700002": "secret key does not match the API key (signature refused)",
    "700006": "this server's IP address is not whitelisted for the API key",
    "730100": "the account is not permitted to use the API",
}


class _AccountReader(MexcRestClient):
    async def account(self) -> Any:
        """The raw GET /api/v3/account reply (the parsed `balances()` drops the permissions)."""
        return await self._call(self._account)


class MexcCredentialChecker:
    def __init__(self, base_url: str, recv_window_ms: int = 5000, **client_options: Any) -> None:
        self.base_url = base_url
        self.recv_window_ms = recv_window_ms
        self._options = {"order_lane": False, **client_options}

    async def check(self, credentials: ApiCredentials) -> CredentialCheckResult:
        client = _AccountReader(credentials.api_key, credentials.secret_key, self.base_url,
                                recv_window_ms=self.recv_window_ms, **self._options)
        try:
            await client.ping()
            await client.sync_clock(samples=3)
            account = await client.account()
        except ExchangeError as exc:
            return CredentialCheckResult(ok=False, can_trade=False, detail=_reason(exc, credentials))
        except ApplicationError as exc:
            detail = _scrub(f"{type(exc).__name__}: {exc}", credentials)
            return CredentialCheckResult(ok=False, can_trade=False, detail=detail)
        finally:
            await client.aclose()
        if not isinstance(account, dict):
            return CredentialCheckResult(ok=False, can_trade=False, detail="MEXC answered the account query unreadably")
        permissions = account.get("permissions")
        spot = not isinstance(permissions, list) or not permissions or "SPOT" in permissions
        can_trade = account.get("canTrade") is True and spot
        held = sum(1 for b in account.get("balances") or () if isinstance(b, dict) and _nonzero(b))
        trade = "spot trading allowed" if can_trade else "keys are read-only: spot trading NOT allowed"
        return CredentialCheckResult(ok=True, can_trade=can_trade, detail=f"keys accepted; {trade}; {held} assets held")


def _reason(exc: ExchangeError, credentials: ApiCredentials) -> str:
    known = _KEY_REFUSALS.get(str(exc.code))
    if known:
        return f"{known} (MEXC {exc.code})"
    if isinstance(exc, OrderRefused):
        return _scrub(f"MEXC refused the check: {exc}", credentials)
    # Not MEXC's answer: it could not be reached (the message says why), it did not answer, or
    # the call was held back here. Nothing is known about the keys.
    return _scrub(f"the keys could not be checked: {exc}", credentials)


def _scrub(text: str, credentials: ApiCredentials) -> str:
    """Belt and braces: an error text never carries the keys back out."""
    for secret in (credentials.secret_key, credentials.api_key):
        if secret:
            text = text.replace(secret, "***")
    return text


def _nonzero(balance: dict[str, Any]) -> bool:
    for name in ("free", "locked"):
        try:
            if float(balance.get(name) or 0) != 0:  # display count only, never money arithmetic
                return True
        except (TypeError, ValueError):
            continue
    return False
