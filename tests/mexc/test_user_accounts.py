"""Each trader's live orders are signed with the keys that trader stored, on the fake MEXC."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from adapters.credentials.memory import MemoryCredentialVault
from adapters.mexc.accounts import UserMexcAccounts
from adapters.security.sealing import KeyRing
from application.credentials import ApiCredentials
from application.errors import AccountUnavailable, OrderRefused
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import KEY, NEW, SECRET, client_for, coid, new_symbol

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Paper:
    """Stands in for the paper broker: records that it was chosen."""


async def accounts_on(server: FakeMexcServer, vault: MemoryCredentialVault, **options) -> UserMexcAccounts:  # noqa: ANN003
    return UserMexcAccounts(vault, Paper(), lambda keys: client_for(server, keys.api_key, keys.secret_key), **options)


async def test_a_live_order_is_signed_with_its_traders_own_keys() -> None:
    vault = MemoryCredentialVault(KeyRing.generate())
    async with FakeMexcServer(api_key=KEY, api_secret=SECRET, symbols=[new_symbol()]) as server:
        await vault.put("bob", ApiCredentials(KEY, SECRET), T0)
        await vault.put("eve", ApiCredentials(KEY, "not-the-secret"), T0)
        accounts = await accounts_on(server, vault)
        try:
            paper = await accounts.trading_for("bob", live=False)
            assert isinstance(paper, Paper)
            bob = await accounts.trading_for("bob", live=True)
            report = await bob.place_market_buy(NEW, Decimal("10"), coid(1))
            assert report.client_order_id == coid(1) and len(server.accepted_orders()) == 1
            assert await accounts.trading_for("bob", live=True) is bob  # one warm client per trader
            eve = await accounts.trading_for("eve", live=True)
            with pytest.raises(OrderRefused):
                await eve.place_market_buy(NEW, Decimal("10"), coid(2))  # her secret does not sign bob's key
            assert len(server.accepted_orders()) == 1
            with pytest.raises(AccountUnavailable, match="no MEXC API keys stored for carol"):
                await accounts.trading_for("carol", live=True)
        finally:
            await accounts.aclose()


async def test_new_keys_get_a_new_client_and_the_operator_account_serves_only_its_user() -> None:
    vault = MemoryCredentialVault(KeyRing.generate())
    operator = object()
    async with FakeMexcServer(api_key=KEY, api_secret=SECRET, symbols=[new_symbol()]) as server:
        accounts = await accounts_on(server, vault, operator=operator, operator_user="local")
        try:
            assert await accounts.trading_for("local", live=True) is operator
            with pytest.raises(AccountUnavailable):
                await accounts.trading_for("bob", live=True)
            await vault.put("bob", ApiCredentials("old-key", "old-secret"), T0)
            first = await accounts.trading_for("bob", live=True)
            await vault.put("bob", ApiCredentials(KEY, SECRET), T0)
            second = await accounts.trading_for("bob", live=True)
            assert second is not first
            await second.place_market_buy(NEW, Decimal("10"), coid(3))
            assert len(server.accepted_orders()) == 1
            # The user's own keys win over the operator's account once stored.
            await vault.put("local", ApiCredentials(KEY, SECRET), T0)
            assert await accounts.trading_for("local", live=True) is not operator
        finally:
            await accounts.aclose()
