"""The safety monitor trips the emergency stop on a price collapse, on the daily loss limit and
on a burst of exchange errors, alerts, and leaves a halted scope alone."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from application.alerts import Alert
from application.ports import TraderSettings
from application.use_cases.monitor import MonitorSafety, SafetyLimits
from domain.events import Recorded, SnipeOrderRejected
from domain.risk import RiskProfile
from tests.adapters.paper_support import LAUNCH, listing
from tests.application.support import World, before_launch, world_at


class Alerts:
    def __init__(self) -> None:
        self.sent: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.sent.append(alert)


def trader(max_daily_loss: str = "50") -> TraderSettings:
    return TraderSettings(
        user_id="alice", risk=RiskProfile(Decimal("100"), 3, Decimal(max_daily_loss), Decimal("1000"))
    )


def monitor_of(world: World, alerts: Alerts, **limits) -> MonitorSafety:  # noqa: ANN003
    return MonitorSafety(world.store, world.paper, world.traders, world.emergency_stop(), world.clock, world.book,
                         SafetyLimits(**limits), alerts)


async def filled_world(prices: list[dict], max_daily_loss: str = "50") -> World:
    world = world_at(before_launch(), listings=[listing(prices=prices)], traders=[trader(max_daily_loss)])
    target_id = await world.scheduled_target()
    outcome = await world.clock.run_together([world.execute_snipe()(target_id)])
    assert outcome[0].result.value == "filled"
    return world


async def test_a_price_collapse_after_entry_halts_the_user_and_alerts() -> None:
    world = await filled_world([{"t": "0", "price": "0.5"}, {"t": "60", "price": "0.2"}])
    alerts = Alerts()
    monitor = monitor_of(world, alerts, price_collapse_percent=Decimal("50"))
    world.clock.set(LAUNCH + timedelta(seconds=30))
    assert (await monitor()).trips == []  # still at the entry price
    world.clock.set(LAUNCH + timedelta(seconds=61))
    report = await monitor()
    [trip] = report.trips
    assert trip.scope == "alice" and "price collapse" in trip.reason and "0.2" in trip.reason
    assert world.book.halted("alice") is not None
    [alert] = alerts.sent
    assert alert.user_id == "alice" and alert.key == "emergency-stop:alice"
    # Halted: the next round does not trip it again (and does not fail on an active switch).
    assert (await monitor()).trips == []


async def test_the_daily_loss_limit_counts_what_open_positions_would_lose_now() -> None:
    # 10 USDT in at 0.5; at 0.4 the position would lose about 2 USDT (plus the entry fee).
    world = await filled_world([{"t": "0", "price": "0.5"}, {"t": "60", "price": "0.4"}], max_daily_loss="2")
    alerts = Alerts()
    monitor = monitor_of(world, alerts)
    world.clock.set(LAUNCH + timedelta(seconds=61))
    [trip] = (await monitor()).trips
    assert trip.scope == "alice" and trip.reason.startswith("daily loss limit reached")
    assert "(limit 2)" in trip.reason


async def test_a_loss_under_the_limit_trips_nothing() -> None:
    world = await filled_world([{"t": "0", "price": "0.5"}, {"t": "60", "price": "0.45"}], max_daily_loss="2")
    monitor = monitor_of(world, Alerts())
    world.clock.set(LAUNCH + timedelta(seconds=61))
    report = await monitor()
    assert report.trips == [] and report.watched_users == 1
    assert world.book.halted("alice") is None


async def _reject(world: World, n: int, spacing: timedelta, first: int = 0) -> None:
    for i in range(first, first + n):
        at = world.clock.now() + spacing * (i - first)
        await world.store.append([Recorded(f"target-x{i}", 1, at, "bob", f"x{i}",
                                           SnipeOrderRejected(f"x{i}", f"c{i}", "30004", "insufficient balance", 1))])


async def test_a_burst_of_exchange_errors_trips_the_global_stop() -> None:
    world = world_at(before_launch())
    alerts = Alerts()
    monitor = monitor_of(world, alerts, error_burst=3, error_window=timedelta(minutes=1))
    assert (await monitor()).trips == []  # the monitor starts reading here
    await _reject(world, 3, timedelta(seconds=1))
    world.clock.advance(timedelta(seconds=3))
    [trip] = (await monitor()).trips
    assert trip.scope == "global" and trip.reason == "3 exchange errors within 1 min"
    assert world.book.halted("anyone") is not None
    assert alerts.sent[0].user_id is None


async def test_errors_spread_wider_than_the_window_are_no_burst() -> None:
    world = world_at(before_launch())
    monitor = monitor_of(world, Alerts(), error_burst=3, error_window=timedelta(seconds=10))
    await monitor()
    for n in range(3):
        await _reject(world, 1, timedelta(0), first=n)
        world.clock.advance(timedelta(seconds=8))
        assert (await monitor()).trips == []


class Resting:
    """An exchange holding open orders until they are cancelled."""

    def __init__(self, orders: list) -> None:  # noqa: ANN001
        self.orders = list(orders)
        self.cancelled: list[str] = []

    async def open_orders(self, symbol=None):  # noqa: ANN001, ANN201
        return list(self.orders)

    async def cancel_order(self, symbol, client_order_id):  # noqa: ANN001, ANN201
        self.cancelled.append(client_order_id.value)
        self.orders = [o for o in self.orders if o.client_order_id != client_order_id]


def resting_order(coid: str):  # noqa: ANN201
    from application.ports import OrderReport, OrderSide, OrderStatus
    from domain.values import ClientOrderId, Symbol

    return OrderReport(Symbol.parse("NEWUSDT"), ClientOrderId(coid), f"x-{coid}", OrderSide.SELL, OrderStatus.NEW,
                       Decimal(0), Decimal(0), Decimal("1.5"))


async def test_a_stop_recorded_elsewhere_gets_its_open_orders_cancelled_once() -> None:
    from application.use_cases.safety import ActivateEmergencyStop, ClearEmergencyStop

    world = world_at(before_launch())
    exchange = Resting([resting_order("lmt-1"), resting_order("lmt-2")])
    # The API records the stop: it holds no exchange session, so nothing is cancelled there.
    api = ActivateEmergencyStop(world.store, Resting([]), world.clock, world.book.__class__())
    await api("alice", "watching the market", "alice")
    alerts = Alerts()
    monitor = MonitorSafety(world.store, world.paper, world.traders,
                            ActivateEmergencyStop(world.store, exchange, world.clock, world.book),
                            world.clock, world.book, SafetyLimits(), alerts)
    report = await monitor()
    assert report.enforced == ["alice"] and report.trips == []
    assert exchange.cancelled == ["lmt-1", "lmt-2"]
    assert "2 cancelled" in alerts.sent[0].text
    exchange.orders.append(resting_order("lmt-3"))
    assert (await monitor()).enforced == []  # once per activation
    # Cleared, then activated again: enforced again.
    await ClearEmergencyStop(world.store, world.clock, world.book.__class__())("alice", "alice")
    await monitor()
    await api("alice", "again", "alice")
    assert (await monitor()).enforced == ["alice"]
    assert exchange.cancelled == ["lmt-1", "lmt-2", "lmt-3"]


async def test_a_monitor_trip_is_automatic_and_the_stop_loss_still_sells_under_it() -> None:
    """A daily-loss trip fires exactly when the stop-loss may be needed: it holds new buys and
    take-profits, not the stop-loss. Here -6 % trips the user, then -80 % is sold at once."""
    from application import repository
    from application.ports import PriceTick
    from domain.safety import Halt, SafetySwitch, safety_stream
    from tests.application.support import NEW

    world = await filled_world([{"t": "0", "price": "0.5"}, {"t": "60", "price": "0.47"}, {"t": "120", "price": "0.1"}])
    # Lowered after the fill: at 0.5 the snipe itself (could lose 1.0095 at its stop-loss) is not sent.
    world.traders.put(trader(max_daily_loss="0.5"))
    world.clock.set(LAUNCH + timedelta(seconds=60))
    assert await world.manage().on_tick(PriceTick(NEW, Decimal("0.47"), world.clock.now())) == []  # -6 %: no stop-loss
    [trip] = (await monitor_of(world, Alerts())()).trips
    assert trip.scope == "alice" and trip.reason.startswith("daily loss limit reached")
    switch = await repository.get(world.store, SafetySwitch, safety_stream("alice"))
    assert (switch.activated_by, switch.automatic, switch.halt) == ("safety-monitor", True, Halt.PROTECTIVE_EXITS_ONLY)

    world.clock.set(LAUNCH + timedelta(seconds=120))
    [outcome] = await world.manage().on_tick(PriceTick(NEW, Decimal("0.1"), world.clock.now()))
    assert (outcome.reason, outcome.filled) == ("stop_loss", True)
    assert world.book.open_positions("alice") == []
    assert world.book.halted("alice") is not None  # still halted for anything new


async def _exit_failures(world: World, positions: list[str], times: int) -> None:
    from domain.events import ExitOrderFailed

    n = 0
    for _ in range(times):
        for pid in positions:
            n += 1
            await world.store.append([Recorded(f"position-{pid}-{n}", 1, world.clock.now(), "bob", pid,
                                               ExitOrderFailed(pid, f"ext{n}", "MEXC 10101: Insufficient balance"))])


async def test_one_position_refused_again_and_again_is_no_burst() -> None:
    """The same exit refused on every tick is one position's problem: it must not halt everyone."""
    world = world_at(before_launch())
    monitor = monitor_of(world, Alerts(), error_burst=3, error_window=timedelta(minutes=1))
    await monitor()
    await _exit_failures(world, ["p-1"], times=6)
    report = await monitor()
    assert report.trips == [] and report.errors_in_window == 1
    assert world.book.halted("anyone") is None


async def test_exits_refused_for_several_positions_are_a_burst() -> None:
    world = world_at(before_launch())
    monitor = monitor_of(world, Alerts(), error_burst=3, error_window=timedelta(minutes=1))
    await monitor()
    await _exit_failures(world, ["p-1", "p-2", "p-3"], times=2)
    [trip] = (await monitor()).trips
    assert trip.scope == "global" and trip.reason == "3 exchange errors within 1 min"


async def test_each_refused_snipe_counts_once_toward_the_burst() -> None:
    # Issue 12: three rejected orders tripped the global stop as "6 exchange errors" with a burst
    # of 5: each refusal records SnipeOrderRejected and SnipeFailed on the target's stream.
    users = [TraderSettings(user_id=f"u{i}") for i in range(3)]
    world = world_at(before_launch(), traders=users)
    monitor = monitor_of(world, Alerts(), error_burst=5, error_window=timedelta(minutes=1))
    await monitor()  # the monitor starts reading here
    targets = [await world.scheduled_target(user_id=u.user_id, quote_amount=Decimal("0.5")) for u in users]
    outcomes = await world.clock.run_together([world.execute_snipe()(t) for t in targets])
    assert [o.result.value for o in outcomes] == ["failed"] * 3  # below the pair's minimum: refused by the exchange
    assert [await world.events(f"target-{t}") for t in targets][0][-2:] == ["SnipeOrderRejected", "SnipeFailed"]
    report = await monitor()
    assert (report.errors_in_window, report.trips) == (3, [])
    assert world.book.halted("anyone") is None
