"""ActivateEmergencyStop cancels open orders where the halted users' orders live: each trader's
own exchange account (per-user keys, routed by ExchangeAccounts), not only the operator's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from application.errors import AccountUnavailable, AmbiguousOutcome
from application.ports import OrderReport, OrderSide, OrderStatus
from application.use_cases.safety import ActivateEmergencyStop
from domain.values import ClientOrderId, Symbol
from tests.application.support import World, before_launch, world_at


def resting(coid: str) -> OrderReport:
    return OrderReport(Symbol.parse("NEWUSDT"), ClientOrderId(coid), f"x-{coid}", OrderSide.SELL, OrderStatus.NEW,
                       Decimal(0), Decimal(0), Decimal("1.5"))


class Account:
    """One exchange account holding open orders until they are cancelled."""

    def __init__(self, *coids: str, broken: bool = False) -> None:
        self.orders = [resting(c) for c in coids]
        self.cancelled: list[str] = []
        self.broken = broken

    async def open_orders(self, symbol: Any = None) -> list[OrderReport]:
        if self.broken:
            raise AmbiguousOutcome("MEXC openOrders: timed out")
        return list(self.orders)

    async def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None:
        self.cancelled.append(client_order_id.value)
        self.orders = [o for o in self.orders if o.client_order_id != client_order_id]


class PerUser:
    """ExchangeAccounts as UserMexcAccounts routes them: each trader's live orders on their own
    account, paper ones on paper, no live account for a trader without keys."""

    def __init__(self, live: dict[str, Account], paper: Account) -> None:
        self.live, self.paper = live, paper

    async def trading_for(self, user_id: str, live: bool) -> Any:
        if not live:
            return self.paper
        if user_id not in self.live:
            raise AccountUnavailable(f"no MEXC API keys stored for {user_id}")
        return self.live[user_id]


async def traders_in_the_book(world: World, *users: str) -> None:
    for user in users:
        await world.scheduled_target(user_id=user)
    await world.book.catch_up(world.store)


async def test_a_user_s_stop_cancels_on_that_user_s_own_account_only() -> None:
    world = world_at(before_launch())
    await traders_in_the_book(world, "alice", "bob")
    operator, alice, bob, paper = Account("op-1"), Account("a-1", "a-2"), Account("b-1"), Account()
    stop = ActivateEmergencyStop(world.store, operator, world.clock, world.book).with_accounts(
        PerUser({"alice": alice, "bob": bob}, paper))

    result = await stop("alice", "rug pull", "alice")

    assert result.cancelled_orders == ["a-1", "a-2"] and result.cancel_failures == []
    assert alice.orders == [] and bob.cancelled == [] and operator.cancelled == []


async def test_the_global_stop_cancels_on_every_trader_s_account_and_the_operator_s() -> None:
    world = world_at(before_launch())
    await traders_in_the_book(world, "alice", "bob", "carol", "dave")  # carol stored no keys: paper only
    operator, alice, bob, paper = Account("op-1"), Account("a-1"), Account("b-1"), Account()
    shared = PerUser({"alice": alice, "bob": bob, "dave": operator}, paper)  # dave trades on the operator's keys
    stop = ActivateEmergencyStop(world.store, operator, world.clock, world.book).with_accounts(shared)

    result = await stop("global", "exchange incident", "ops")

    assert sorted(result.cancelled_orders) == ["a-1", "b-1", "op-1"]
    assert operator.cancelled == ["op-1"]  # once, though it is listed twice (operator, dave's)
    assert (alice.orders, bob.orders, operator.orders) == ([], [], [])


async def test_one_account_that_cannot_be_read_does_not_stop_the_others() -> None:
    world = world_at(before_launch())
    await traders_in_the_book(world, "alice", "bob")
    operator, alice, bob = Account(), Account(broken=True), Account("b-1")
    stop = ActivateEmergencyStop(world.store, operator, world.clock, world.book).with_accounts(
        PerUser({"alice": alice, "bob": bob}, Account()))

    result = await stop("global", "exchange incident", "ops")

    assert result.cancelled_orders == ["b-1"]
    [failure] = result.cancel_failures
    assert "live account of alice" in failure and "timed out" in failure
    assert world.book.halted("bob") is not None  # the halt is on record whatever the cancels did


async def test_without_accounts_the_operator_s_account_is_the_one_cancelled_on() -> None:
    world = world_at(before_launch())
    operator = Account("op-1")
    result = await ActivateEmergencyStop(world.store, operator, world.clock, world.book)("alice", "halt", "ops")
    assert result.cancelled_orders == ["op-1"]
