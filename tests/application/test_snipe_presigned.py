"""The first send made ahead (issue 14): an exchange that can sign a buy's first request before
the launch (PresignedSends) is asked to, when the executor prepares, for the planned instant of
the first send; an exchange that cannot make it ahead does not cost the snipe."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from application.errors import OrderRefused
from application.ports import PresignedSends
from application.use_cases.snipe import ExecuteSnipe, SnipeResult
from domain.values import ClientOrderId, Symbol
from tests.application.support import World, before_launch, coid_of, world_at
from tests.application.test_snipe_bracket import _executor, _OffsetExchange
from tests.application.test_snipe_halt_and_lease import SlowReads

US = timedelta(microseconds=1)
MS = timedelta(milliseconds=1)


class _Arming(_OffsetExchange):
    """The bracket tests' exchange, recording what it is asked to make ahead (or refusing to)."""

    refuse = False
    armed: list[tuple[Symbol, Decimal, Decimal | None, ClientOrderId, datetime]]

    def arm_buy(self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal | None,
                client_order_id: ClientOrderId, send_at: datetime) -> None:
        self.armed.append((symbol, quote_amount, max_price, client_order_id, send_at))
        if self.refuse:
            raise OrderRefused("refused before sending: below the pair's minimum", "30002")


def _exchange(world: World, refuse: bool = False) -> _Arming:
    exchange = _Arming(world.paper, world.clock, true_offset=-180 * US, measured=-100 * US,
                       spread=300 * US, latency=60 * US)
    exchange.armed, exchange.refuse = [], refuse
    return exchange


async def test_the_first_send_is_made_ahead_for_its_planned_instant() -> None:
    world = world_at(before_launch())
    exchange = _exchange(world)
    assert isinstance(exchange, PresignedSends)
    tid = await world.scheduled_target()
    outcome = await _executor(world, exchange)(tid)

    assert outcome.result is SnipeResult.FILLED
    [(symbol, amount, cap, coid, send_at)] = exchange.armed
    target = await world.target(tid)
    assert (symbol, amount, cap, coid) == (target.symbol, target.quote_amount, None, coid_of(tid))
    first_left = exchange.sends[0][0]
    assert send_at == first_left == outcome.first_send_at


async def test_an_order_that_cannot_be_made_ahead_is_still_sent() -> None:
    world = world_at(before_launch())
    exchange = _exchange(world, refuse=True)
    tid = await world.scheduled_target()
    outcome = await _executor(world, exchange)(tid)

    assert len(exchange.armed) == 1
    assert outcome.result is SnipeResult.FILLED


async def test_no_database_read_runs_between_the_sends_of_the_bracket() -> None:
    """The emergency stop is read 300 ms before the launch; the check between sends waits for the
    end of the bracket's back-to-back sends (a read there would hold a resend up)."""
    world = world_at(before_launch())
    exchange = _exchange(world)
    store = SlowReads(world, timedelta(0))
    tid = await world.scheduled_target()
    execute = ExecuteSnipe(store, exchange, world.paper, world.traders, world.locks, world.clock,  # type: ignore[arg-type]
                           world.book, world.timing)
    outcome = await execute(tid)

    assert outcome.result is SnipeResult.FILLED and outcome.not_open >= 1
    first_left, last_left = exchange.sends[0][0], exchange.sends[-1][0]
    assert not [t for t in store.read_at if first_left - 250 * MS < t <= last_left]
    assert [t for t in store.read_at if t <= first_left][-1] == first_left - 300 * MS
