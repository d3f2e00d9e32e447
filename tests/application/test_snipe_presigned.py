"""The first send made ahead (issue 14): an exchange that can sign a buy's first request before
the launch (PresignedSends) is asked to, when the executor prepares, for the planned instant of
the first send; an exchange that cannot make it ahead does not cost the snipe."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from application.errors import OrderRefused
from application.ports import PresignedSends
from application.use_cases.snipe import SnipeResult
from domain.values import ClientOrderId, Symbol
from tests.application.support import World, before_launch, coid_of, world_at
from tests.application.test_snipe_bracket import _executor, _OffsetExchange

US = timedelta(microseconds=1)


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
