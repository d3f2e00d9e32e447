"""MexcExchange and ManagePositions against the fake exchange, in real time on 127.0.0.1:

- a launch buy that matched more than 100 makers: myTrades lists at most 100 fills per call and
  has no fromId, so the adapter pages by time; fills it cannot reach (more than 100 in one
  millisecond) leave the fee unknown, and the first all-out exit reads the balance instead;
- a pair missing from exchangeInfo at fill time: the snipe guesses the step from the fill; the
  exits round with the exchange's real step, and never write coins off on the guess."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from adapters.clock import SystemClock
from adapters.eventstore.memory import InMemoryEventStore
from adapters.mexc.exchange import MexcExchange
from application import repository
from application.errors import NotFound
from application.ports import PriceTick
from application.trade_book import TradeBook
from application.use_cases.positions import ManagePositions
from domain.events import DustWrittenOff, ExitOrderFailed, StopLossHit
from domain.position import Position, PositionStatus, position_id_for, position_stream
from domain.values import Symbol
from tests.fakes.mexc_http import ACCOUNT, EXCHANGE_INFO, MY_TRADES, FakeMexcServer, Fault, FaultKind
from tests.mexc.support import NEW, client_for, coid, new_symbol
from tests.mexc.test_exit_fees import BOUGHT, FEE, TARGET_ID, Rig

# --- myTrades pages ------------------------------------------------------------------------------


async def test_a_buy_matched_in_more_than_100_fills_gets_its_whole_fee_over_pages() -> None:
    async with (
        FakeMexcServer(symbols=[new_symbol()], charge_fees=True, fills_per_order=150, fill_spacing_ms=1) as server,
        client_for(server) as client,
    ):
        exchange = MexcExchange(client, clock_samples=1)
        await exchange.place_market_buy(NEW, Decimal("10"), coid(1))
        assert len(server.trades) == 150
        report = await exchange.query_order(NEW, coid(1))
        assert report is not None and (report.executed_quantity, report.fee, report.fee_asset) == (BOUGHT, FEE, "NEW")
        assert server.hits[MY_TRADES] == 2  # the newest 100, then the older 50


async def test_fills_beyond_a_page_in_one_millisecond_leave_the_fee_unknown_after_a_bounded_search() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], charge_fees=True, fills_per_order=150) as server, \
            client_for(server) as client:
        exchange = MexcExchange(client, clock_samples=1)
        await exchange.place_market_buy(NEW, Decimal("10"), coid(1))
        report = await exchange.query_order(NEW, coid(1))
        assert report is not None and (report.executed_quantity, report.fee, report.fee_asset) == (BOUGHT, 0, "")
        assert server.hits[MY_TRADES] == 3  # the first page, then older and newer: nothing new either way


async def test_with_the_fee_beyond_reach_the_first_exit_sells_what_the_account_holds() -> None:
    async with FakeMexcServer(symbols=[new_symbol()], charge_fees=True, fills_per_order=150) as server, \
            client_for(server) as client:
        rig = Rig(server, MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())
        position = await rig.buy()
        assert position.remaining == BOUGHT and position.entry_fee_known is False
        assert server.balances["NEW"] == BOUGHT - FEE
        server.symbols["NEWUSDT"].price = Decimal("0.2")
        reads = server.hits[ACCOUNT]
        [outcome] = await ManagePositions(rig.store, rig.exchange, rig.clock, rig.book).on_tick(
            PriceTick(NEW, Decimal("0.2"), rig.clock.now()))
        assert (outcome.filled, outcome.quantity) == (True, "33.31")
        assert server.hits[ACCOUNT] == reads + 1  # read once, before the sell
        events = await rig.events()
        assert not any(isinstance(e, ExitOrderFailed) for e in events)  # no 10101 asked for
        [dust] = [e for e in events if isinstance(e, DustWrittenOff)]
        assert dust.quantity == BOUGHT - Decimal("33.31") and server.balances["NEW"] == Decimal("0.003335")


# --- a step guessed at fill time -----------------------------------------------------------------

class NotListedYet:
    """exchangeInfo does not list the pair yet, as the snipe sees it at fill time."""

    async def symbol_rules(self, symbol: Symbol) -> Any:
        raise NotFound(f"MEXC lists no {symbol}")

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        return None


async def buy_with_a_guessed_step(rig: Rig) -> Position:
    """10 USDT at 5: 2.0000 NEW (step 0.0001), 0.001 NEW of it the fee: 1.999 held. The snipe
    could not read the rules and guessed the step from "2.0000": 0 decimals."""
    position = await rig.buy(NotListedYet())
    assert (position.quantity_scale, position.remaining) == (0, Decimal("1.999"))
    return position


def guessed_step_server() -> FakeMexcServer:
    return FakeMexcServer(symbols=[new_symbol(price=Decimal("5"), quantity_scale=4, min_quantity=Decimal("0.0001"))],
                          charge_fees=True)


async def test_the_stop_loss_sells_everything_at_the_exchange_s_step() -> None:
    # The audit's proof: it sold 1 NEW and wrote 0.999 NEW (~4 USDT) off as dust.
    async with guessed_step_server() as server, client_for(server) as client:
        rig = Rig(server, MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())
        await buy_with_a_guessed_step(rig)
        server.symbols["NEWUSDT"].price = Decimal("4")
        [outcome] = await ManagePositions(rig.store, rig.exchange, rig.clock, rig.book).on_tick(
            PriceTick(NEW, Decimal("4"), rig.clock.now()))
        assert (outcome.filled, Decimal(outcome.quantity)) == (True, Decimal("1.999"))
        events = await rig.events()
        assert not any(isinstance(e, DustWrittenOff) for e in events)
        [hit] = [e for e in events if isinstance(e, StopLossHit)]
        assert hit.quantity == Decimal("1.999") and server.balances["NEW"] == 0
        assert (await rig.position()).status is PositionStatus.CLOSED


async def test_with_the_rules_still_unknown_nothing_is_written_off() -> None:
    async with guessed_step_server() as server, client_for(server) as client:
        rig = Rig(server, MexcExchange(client, clock_samples=1), InMemoryEventStore(), SystemClock(), TradeBook())
        await buy_with_a_guessed_step(rig)
        server.symbols["NEWUSDT"].price = Decimal("4")
        # Another worker's adapter, which never loaded the pair, and exchangeInfo still without it.
        fresh = MexcExchange(client, clock_samples=1)
        server.inject(
            Fault(FaultKind.ERROR_CODE, EXCHANGE_INFO, times=100, status=400, code=30014, message="Invalid symbol.")
        )
        manage = ManagePositions(rig.store, fresh, rig.clock, rig.book)
        [outcome] = await manage.on_tick(PriceTick(NEW, Decimal("4"), rig.clock.now()))
        assert (outcome.filled, Decimal(outcome.quantity)) == (True, 1)  # what the guessed step allows
        assert await manage.on_tick(PriceTick(NEW, Decimal("4"), rig.clock.now())) == []  # the rest waits
        position = await repository.get(rig.store, Position, position_stream(position_id_for(TARGET_ID)))
        assert (position.status, position.remaining) == (PositionStatus.PARTIALLY_EXITED, Decimal("0.999"))
        assert not any(isinstance(e, DustWrittenOff) for e in await rig.events())
        assert server.balances["NEW"] == Decimal("0.999")  # still there, still the position's
