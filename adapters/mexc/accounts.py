"""Each user's own MEXC account: live orders signed with the keys that user stored.

The keys are decrypted here, where orders are signed, and nowhere else. One REST client per
user is kept while the user's API key stays the same (a warm connection for the launch); a
user who replaces their keys gets a new client, the old one is closed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from adapters.mexc.exchange import MexcExchange
from adapters.mexc.rest import MexcRestClient
from application.credentials import ApiCredentials, CredentialVault
from application.errors import AccountUnavailable
from application.ports import AssetBalance, ExchangeTrading

logger = logging.getLogger(__name__)

Wrap = Callable[[MexcExchange], ExchangeTrading]


@dataclass(slots=True)
class _Account:
    fingerprint: str
    client: MexcRestClient
    exchange: ExchangeTrading


class UserMexcAccounts:
    """ExchangeAccounts for a live worker serving several traders.

    Paper targets fill on `paper`. A live target goes to its user's MEXC account, built from
    the vault; the operator's own account (`operator`, from MEXC_API_KEY) serves
    `operator_user` when that user stored no keys. Anyone else without keys is refused:
    no order is ever signed with another person's keys.
    """

    def __init__(
        self,
        vault: CredentialVault,
        paper: ExchangeTrading,
        make_client: Callable[[ApiCredentials], MexcRestClient],
        *,
        wrap: Wrap = lambda exchange: exchange,
        operator: ExchangeTrading | None = None,
        operator_user: str | None = None,
    ) -> None:
        self._vault, self._paper, self._make_client, self._wrap = vault, paper, make_client, wrap
        self._operator, self._operator_user = operator, operator_user
        self._accounts: dict[str, _Account] = {}

    async def trading_for(self, user_id: str, live: bool) -> ExchangeTrading:
        if not live:
            return self._paper
        credentials = await self._vault.reveal(user_id)
        if credentials is None:
            if self._operator is not None and user_id == self._operator_user:
                return self._operator
            raise AccountUnavailable(f"no MEXC API keys stored for {user_id}: store them to trade live")
        fingerprint = _fingerprint(credentials)
        account = self._accounts.get(user_id)
        if account is not None and account.fingerprint == fingerprint:
            return account.exchange
        if account is not None:
            await account.client.aclose()  # the user replaced their keys
        client = self._make_client(credentials)
        account = self._accounts[user_id] = _Account(fingerprint, client, self._wrap(MexcExchange(client)))
        return account.exchange

    async def aclose(self) -> None:
        for account in self._accounts.values():
            try:
                await account.client.aclose()
            except Exception:  # noqa: BLE001 - closing is best effort
                logger.warning("could not close a MEXC client", exc_info=True)
        self._accounts.clear()


def _fingerprint(credentials: ApiCredentials) -> str:
    """Tells a change of keys without keeping them in a dictionary key."""
    return hashlib.sha256(f"{credentials.api_key}\0{credentials.secret_key}".encode()).hexdigest()


class UserMexcBalances:
    """LiveBalances on MEXC: a user's balances (GET /api/v3/account, read-only) with the keys that
    user stored; the operator's keys (`operator`, from MEXC_API_KEY) serve `operator_user` when
    that user stored none. One client per user is kept while their key stays the same."""

    def __init__(
        self,
        vault: CredentialVault,
        make_client: Callable[[ApiCredentials], MexcRestClient],
        *,
        operator: ApiCredentials | None = None,
        operator_user: str | None = None,
    ) -> None:
        self._vault, self._make_client = vault, make_client
        self._operator, self._operator_user = operator, operator_user
        self._clients: dict[str, tuple[str, MexcRestClient]] = {}

    async def balances(self, user_id: str) -> list[AssetBalance]:
        credentials = await self._vault.reveal(user_id)
        if credentials is None and self._operator is not None and user_id == self._operator_user:
            credentials = self._operator
        if credentials is None:
            raise AccountUnavailable(f"no MEXC API keys stored for {user_id}: store them to see the live balances")
        client = await self._client_for(user_id, credentials)
        held = await client.balances()
        return [AssetBalance(b.asset, b.free, b.locked) for b in held.values() if b.free or b.locked]

    async def _client_for(self, user_id: str, credentials: ApiCredentials) -> MexcRestClient:
        fingerprint = _fingerprint(credentials)
        kept = self._clients.get(user_id)
        if kept is not None and kept[0] == fingerprint:
            return kept[1]
        if kept is not None:
            await kept[1].aclose()  # the user replaced their keys
        client = self._make_client(credentials)
        self._clients[user_id] = (fingerprint, client)
        return client

    async def aclose(self) -> None:
        for _, client in self._clients.values():
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing is best effort
                logger.warning("could not close a MEXC client", exc_info=True)
        self._clients.clear()
