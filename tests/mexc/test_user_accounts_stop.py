"""The emergency stop cancels a trader's open orders on that trader's own MEXC account (keys
from the vault, routed by UserMexcAccounts), not only on the operator's; and the containers
give the worker such a stop."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from adapters.clock import ManualClock
from adapters.credentials.memory import MemoryCredentialVault
from adapters.eventstore.memory import InMemoryEventStore
from adapters.mexc.accounts import UserMexcAccounts
from adapters.paper.scenario import load_scenario
from adapters.security.sealing import KeyRing
from application import repository
from application.credentials import ApiCredentials
from application.ports import ExchangeAccounts
from application.trade_book import TradeBook
from application.use_cases.safety import ActivateEmergencyStop
from domain.events import Cause
from domain.exit_plans import PRESETS
from domain.target import SnipeTarget
from entrypoints.config import BUNDLED_SCENARIO, load_settings
from entrypoints.container import paper_trading_container
from tests.fakes.mexc_http import FakeMexcServer
from tests.mexc.support import KEY, NEW, SECRET, client_for, new_symbol

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


class Nothing:
    """The operator's account in a worker without MEXC keys of its own: holds no orders."""

    async def open_orders(self, symbol: object = None) -> list[object]:
        return []


async def test_a_stop_cancels_the_resting_order_on_the_trader_s_own_account() -> None:
    vault = MemoryCredentialVault(KeyRing.generate())
    store, book, clock = InMemoryEventStore(), TradeBook(), ManualClock(T0)
    async with FakeMexcServer(api_key=KEY, api_secret=SECRET, symbols=[new_symbol()],
                              balances={"USDT": "1000", "NEW": "100"}) as server:
        await vault.put("alice", ApiCredentials(KEY, SECRET), T0)
        accounts = UserMexcAccounts(vault, Nothing(), lambda keys: client_for(server, keys.api_key, keys.secret_key))
        try:
            alice = await accounts.trading_for("alice", live=True)
            await alice.client.new_order("NEWUSDT", "SELL", "LIMIT", price=Decimal("3"), quantity=Decimal("5"),  # type: ignore[attr-defined]
                                         client_order_id="alice-limit-1")
            target = SnipeTarget.create("t-alice", "alice", "c", NEW, T0, Decimal("10"), PRESETS["balanced"],
                                        Decimal("0.9"), True, Cause(T0, "x"))
            await repository.save(store, target)

            stop = ActivateEmergencyStop(store, Nothing(), clock, book).with_accounts(accounts)  # type: ignore[arg-type]
            result = await stop("global", "exchange incident", "ops")

            assert result.cancelled_orders == ["alice-limit-1"] and result.cancel_failures == []
            assert server.orders["alice-limit-1"].status == "CANCELED"
            assert server.balances["NEW"] == Decimal("100")  # released from the order
        finally:
            await accounts.aclose()


async def test_the_container_s_stop_cancels_through_the_traders_accounts() -> None:
    settings = load_settings({"DATABASE_URL": "memory://"})
    container = paper_trading_container(settings, load_scenario(BUNDLED_SCENARIO), ManualClock(T0))
    try:
        stop = await container.get(ActivateEmergencyStop)
        assert stop.accounts is not None and stop.accounts is await container.get(ExchangeAccounts)
    finally:
        await container.close()
