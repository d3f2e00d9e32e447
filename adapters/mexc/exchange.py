"""MexcExchange: the ExchangeTrading and MarketData ports on MEXC spot REST.

Matches the paper exchange's semantics where MEXC allows:
- `place_market_buy` is a MARKET BUY by quoteOrderQty with our client order id. The quote
  amount is rounded down to the quote asset's scale and refused here (OrderRefused 30002 /
  30003, nothing sent) when outside the symbol's market-order bounds, once the symbol's
  rules are known (`prepare` or `symbol_rules` loads them; without them the exchange judges).
- `place_capped_buy` is an IMMEDIATE_OR_CANCEL BUY (MEXC's order type of that name, which takes
  price and quantity) at the cap: price rounded down to the pair's price scale, quantity = quote
  amount / price rounded down to its quantity step, refused here (OrderRefused 30002, nothing sent)
  below the pair's minimum quantity or order value. Without the pair's rules (exchangeInfo did not
  list it at `prepare`) the price goes as given and the quantity keeps three significant digits,
  rounded down (at most 1 % less than the amount), a step most pairs accept. What does not fill at
  once is cancelled by MEXC (CANCELED, or PARTIALLY_CANCELED with what filled).
- MEXC's order POST reply usually has no fill information: the report is then NEW with
  nothing executed, and the caller follows it with `query_order` (ExecuteSnipe does).
- Reports from GET order: executed quantity = executedQty, executed quote =
  cummulativeQuoteQty, average price = their ratio. GET order carries no fee: once an order
  is done (final, something executed) its commission is read from myTrades (weight 10, once
  per order, after the order went out, so never on the send path) and reported as fee and
  fee_asset. MEXC takes it from the received asset by default: a buy's fee in the base coin
  means the account holds executedQty minus the fee, and the position must hold that. A buy's
  fee in a third asset (MX) leaves the coins received whole: reported in that asset (the cost
  misses it); a free buy is 0 in the quote: a buy's fee known always names its asset. A sell's
  fee is in the quote (a third asset's, or none, is 0, ""). MEXC lists at most 100 fills per call
  and has no `fromId`: an order with more is paged by time (`_order_trades`, bounded). When
  myTrades fails, does not show the whole fill yet, or holds more fills in one millisecond than
  a page, the report says fee 0, "" (not known), and `free_balance` lets a seller find out what
  the account holds. The lookup is background work (adapters/mexc/limits.py): it draws from the
  key's and the IP's myTrades budget (shared by every trader of the process, and through Redis by
  every worker) and yields to urgent calls. A sell's report waits for budget rather than being
  sent into a 429 (up to about one window; longer, e.g. under a 418 ban, it is not sent and the
  fee is unknown), and after a 429 asks once more when Retry-After has passed. A buy's report
  never waits for it (issue 14: fifty traders filling in one window spend the IP's myTrades
  budget whole, and a fill held back for its fee is a position whose exits do not watch): the
  fee comes with it when known already or when budget is free now, else not known, and the
  snipe learns it after recording the fill through `order_fee` (OrderFees), which waits.
  Whatever happens to the lookup, the order's report (the fill) is returned.
- `query_order`/`cancel_order` answer None for an order MEXC does not know (-2011).
- A reused client order id is OrderAlreadyExists, as on the paper exchange (MEXC documents
  no code for it: see adapters.mexc.errors).
- `open_orders(None)`: MEXC needs a symbol, so this asks for every symbol this adapter has
  seen (prepared, traded, queried, or given as `watch_symbols`) plus every base asset with a
  locked balance paired with each of `quote_assets`. An order on another symbol whose funds
  are locked only in the quote asset can be missed: name such symbols in `watch_symbols`.

The snipe request (market or capped) is built once per (symbol, amount, cap, client order id):
the NotYetOpen retry loop then only stamps the timestamp and signs, on the order lane. The first
send's request can be made whole ahead (`arm_buy`: stamped for the planned send and signed), so
that send only writes it.

Many traders, one process (issue 14): the traders' exchanges share one clock sync and one
exchangeInfo load per pair (`MexcShare`, `_SHARE_TTL`): the first trader to prepare measures the
clock (`clock_samples` /time calls) and loads the pair's rules (weight 10); the others preparing
within the ttl take those, and each sends one /time call on its own order lane (which warms that
lane's connection for its order). 50 traders cost 54 /time calls and one exchangeInfo, not 250
and 50.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from adapters.mexc.errors import UnexpectedReply
from adapters.mexc.models import Balance, ClockSync, MexcOrder, MexcTrade, SymbolInfo, ms_to_datetime, plain, round_down
from adapters.mexc.rest import MexcRestClient, PreparedOrder, PresignedQuery, is_invalid_symbol
from application.errors import ExchangeDataUnreadable, ExchangeError, NotFound, NotYetOpen, OrderRefused, RateLimited
from application.ports import ClockOffset, OrderReport, OrderSide, OrderStatus, SymbolRules
from domain.errors import InvalidValue
from domain.values import ClientOrderId, Symbol

DEFAULT_TAKER_FEE = Decimal("0.0005")
_PREPARED_KEEP = 64
_FEES_KEEP = 256
_TRADES_PER_PAGE = 100  # MEXC's maximum (and default) for myTrades
_TRADE_PAGES = 10  # calls for one order's fills at most (weight 10 each)
_STATUSES = {s.value: s for s in OrderStatus}


_log = logging.getLogger(__name__)

# How long a clock sync or a pair's rules loaded by one trader's exchange serve the others of
# the process (`MexcShare`): long enough to cover the traders of one launch, who all prepare
# `prepare_ahead` before it; short enough that nothing stale outlives a launch.
_SHARE_TTL = 5.0
T = TypeVar("T")


class MexcShare:
    """Answers the MexcExchanges of one process share for `ttl` seconds: the first asker's call
    runs, the others (in flight with it, or after it within the ttl) take its result. A call that
    fails is forgotten at once (the next asker calls again); those waiting on it get its error.
    Kept per event loop, so a test's fake exchange never sees another loop's answers."""

    def __init__(self, ttl: float = _SHARE_TTL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._monotonic = monotonic
        self._entries: dict[tuple[Hashable, ...], tuple[float, asyncio.Future[Any]]] = {}

    async def get(self, key: tuple[Hashable, ...], call: Callable[[], Awaitable[T]]) -> T:
        now = self._monotonic()
        for stale in [k for k, (at, _) in self._entries.items() if now - at >= self.ttl]:
            del self._entries[stale]
        full = (asyncio.get_running_loop(), *key)
        entry = self._entries.get(full)
        if entry is None:
            task: asyncio.Future[Any] = asyncio.ensure_future(call())
            entry = self._entries[full] = (now, task)
            task.add_done_callback(lambda done: self._forget_failed(full, done))
        # Shielded: a trader cancelled while waiting does not cancel the call the others wait on.
        answer: T = await asyncio.shield(entry[1])
        return answer

    def _forget_failed(self, key: tuple[Hashable, ...], task: asyncio.Future[Any]) -> None:
        if task.cancelled() or task.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is task:
                del self._entries[key]


# The process's share (see MexcShare): every MexcExchange uses it unless given another.
PROCESS_SHARE = MexcShare()


class MexcExchange:
    def __init__(
        self,
        client: MexcRestClient,
        *,
        clock_samples: int = 5,
        quote_assets: Iterable[str] = ("USDT",),
        watch_symbols: Iterable[Symbol] = (),
        share: MexcShare | None = PROCESS_SHARE,
    ) -> None:
        self.client = client
        self.share = share  # None: this exchange syncs and loads for itself
        self.clock_samples = clock_samples
        self.quote_assets = tuple(quote_assets)
        self._info: dict[str, SymbolInfo] = {}
        self._seen: dict[str, Symbol] = {s.code: s for s in watch_symbols}
        self._prepared: dict[tuple[str, str, Decimal, str], PreparedOrder] = {}
        # A buy's first request, made ahead (`arm_buy`): used by its next send only.
        self._armed: dict[tuple[str, str, Decimal, str], PresignedQuery] = {}
        # Orders found without a usable client id are labelled by their exchange id.
        self._exchange_ids: dict[str, str] = {}
        # Commission of done orders (by exchange order id): a done order's fills never change.
        self._fees: dict[str, tuple[Decimal, str]] = {}

    # --- ExchangeTrading -------------------------------------------------------------------

    async def prepare(self, symbol: Symbol) -> timedelta:
        """Sync the clock (several /time samples, sent on the order lane, so its connection is
        open and warm for the order) and load the symbol's rules, so the send path does
        nothing but stamp, sign and write. Returns MEXC's clock offset (server - local), with how
        sure it is and the time a request takes to reach MEXC (a ClockOffset)."""
        self._seen[symbol.code] = symbol
        sync = await self._sync_clock()
        try:
            await self._load_info(symbol, shared=True)
        except NotFound:
            pass  # not listed yet: the exchange will judge the order itself
        except UnexpectedReply as exc:
            # A malformed symbol list: rules read from it would be guesses. No order on a guess.
            raise ExchangeDataUnreadable(f"exchangeInfo for {symbol} is unreadable: {exc}") from exc
        except ExchangeError as exc:
            # A passing failure (5xx, timeout) must not cost the snipe: the order goes out as
            # asked and the exchange judges it.
            _log.warning("symbol rules for %s unavailable, sending without them: %s", symbol, exc)
        if sync.offset_ns is None or sync.spread_ns is None:
            return timedelta(milliseconds=sync.offset_ms)
        return ClockOffset(timedelta(microseconds=sync.offset_ns // 1000),
                           timedelta(microseconds=sync.spread_ns // 1000),
                           timedelta(microseconds=sync.rtt_ns // 2000))

    def prepare_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId,
    ) -> PreparedOrder:
        """Build (and keep) the snipe order now; raises OrderRefused if it is outside the rules."""
        key = (symbol.code, "BUY", quote_amount, client_order_id.value)
        prepared = self._prepared.get(key)
        if prepared is None:
            info = self._info.get(symbol.code)
            amount = info.market_buy_amount(quote_amount) if info is not None else quote_amount
            prepared = self.client.prepare_order(
                symbol.code, "BUY", "MARKET", quote_order_qty=amount, client_order_id=client_order_id.value
            )
            self._keep(key, prepared)
        return prepared

    def arm_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal | None, client_order_id: ClientOrderId,
        send_at: datetime,
    ) -> None:
        """PresignedSends: build the buy (market, or capped at `max_price`) and sign its request now,
        stamped with MEXC's time at `send_at` (our clock) by the offset the last clock sync
        measured, so its next send writes bytes already made. That send only: any later one is
        signed afresh (MEXC wants a fresh timestamp), as is one leaving when MEXC would no longer
        take the stamp (see MexcRestClient.presign). Raises OrderRefused when the order is outside
        the pair's rules (the send says so again)."""
        self._seen[symbol.code] = symbol
        if max_price is None:
            key = (symbol.code, "BUY", quote_amount, client_order_id.value)
            prepared = self.prepare_market_buy(symbol, quote_amount, client_order_id)
        else:
            key = (symbol.code, f"BUY<={max_price}", quote_amount, client_order_id.value)
            prepared = self.prepare_capped_buy(symbol, quote_amount, max_price, client_order_id)
        stamp = int(send_at.timestamp() * 1000) + self.client.clock_offset_ms
        if key not in self._armed and len(self._armed) >= _PREPARED_KEEP:
            self._armed.pop(next(iter(self._armed)))
        self._armed[key] = self.client.presign(prepared, stamp)

    async def place_market_buy(
        self, symbol: Symbol, quote_amount: Decimal, client_order_id: ClientOrderId,
    ) -> OrderReport:
        key = (symbol.code, "BUY", quote_amount, client_order_id.value)
        prepared = self._prepared.get(key)
        if prepared is None:
            self._seen[symbol.code] = symbol
            prepared = self.prepare_market_buy(symbol, quote_amount, client_order_id)
        order = await self.client.send_order(prepared, self._armed.pop(key, None))
        return await self._with_fee(self._report(order, symbol, client_order_id, OrderSide.BUY))

    def prepare_capped_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal, client_order_id: ClientOrderId
    ) -> PreparedOrder:
        """Build (and keep) the capped snipe order now (see the module doc); raises OrderRefused if
        it is outside the rules."""
        key = (symbol.code, f"BUY<={max_price}", quote_amount, client_order_id.value)
        prepared = self._prepared.get(key)
        if prepared is None:
            info = self._info.get(symbol.code)
            if info is not None:
                price = info.round_price(max_price)
                if price <= 0:
                    raise OrderRefused(
                        f"refused before sending: the cap {plain(max_price)} is below the price step of {symbol}",
                        "30002",
                    )
                price, quantity = info.limit_order(price, quote_amount / price)
            else:
                price, quantity = max_price, _three_digits(quote_amount / max_price)
                if quantity <= 0:
                    raise OrderRefused(f"refused before sending: {plain(quote_amount)} buys nothing at {plain(price)}",
                                       "30002")
            prepared = self.client.prepare_order(
                symbol.code, "BUY", "IMMEDIATE_OR_CANCEL", quantity=quantity, price=price,
                client_order_id=client_order_id.value,
            )
            self._keep(key, prepared)
        return prepared

    async def place_capped_buy(
        self, symbol: Symbol, quote_amount: Decimal, max_price: Decimal, client_order_id: ClientOrderId
    ) -> OrderReport:
        key = (symbol.code, f"BUY<={max_price}", quote_amount, client_order_id.value)
        prepared = self._prepared.get(key)
        if prepared is None:
            self._seen[symbol.code] = symbol
            prepared = self.prepare_capped_buy(symbol, quote_amount, max_price, client_order_id)
        order = await self.client.send_order(prepared, self._armed.pop(key, None))
        return await self._with_fee(self._report(order, symbol, client_order_id, OrderSide.BUY))

    async def place_market_sell(self, symbol: Symbol, quantity: Decimal, client_order_id: ClientOrderId) -> OrderReport:
        self._seen[symbol.code] = symbol
        info = self._info.get(symbol.code)
        qty = info.market_sell_quantity(quantity) if info is not None else quantity
        if qty <= 0:
            raise OrderRefused(f"refused before sending: quantity {plain(qty)} is not positive", "30002")
        order = await self.client.new_order(
            symbol.code, "SELL", "MARKET", quantity=qty, client_order_id=client_order_id.value
        )
        return await self._with_fee(self._report(order, symbol, client_order_id, OrderSide.SELL))

    async def query_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        self._seen[symbol.code] = symbol
        exchange_id = self._exchange_ids.get(client_order_id.value)
        if exchange_id is not None:
            order = await self.client.query_order(symbol.code, order_id=exchange_id)
        else:
            order = await self.client.query_order(symbol.code, client_order_id.value)
        return None if order is None else await self._with_fee(self._report(order, symbol, client_order_id, None))

    async def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> OrderReport | None:
        exchange_id = self._exchange_ids.get(client_order_id.value)
        if exchange_id is not None:
            order = await self.client.cancel_order(symbol.code, order_id=exchange_id)
        else:
            order = await self.client.cancel_order(symbol.code, client_order_id.value)
        return None if order is None else self._report(order, symbol, client_order_id, None)

    async def open_orders(self, symbol: Symbol | None = None) -> list[OrderReport]:
        symbols = [symbol] if symbol is not None else await self._symbols_with_possible_orders()
        reports: list[OrderReport] = []
        for sym in symbols:
            try:
                orders = await self.client.open_orders(sym.code)
            except OrderRefused as exc:
                if symbol is None and is_invalid_symbol(exc):
                    continue  # a guessed pair that does not exist
                raise
            reports.extend(self._report(o, sym, None, None) for o in orders)
        return reports

    async def balances(self) -> dict[str, Balance]:
        return await self.client.balances()

    async def free_balance(self, asset: str) -> Decimal:
        """AccountBalances: what the account holds of `asset`, not locked in open orders."""
        balance = (await self.client.balances()).get(asset)
        return balance.free if balance is not None else Decimal(0)

    # --- MarketData ----------------------------------------------------------------------

    async def symbol_rules(self, symbol: Symbol) -> SymbolRules:
        info = self._info.get(symbol.code) or await self._load_info(symbol)
        return SymbolRules(
            symbol=symbol,
            price_scale=info.price_scale,
            quantity_scale=info.quantity_scale,
            min_notional=info.min_market_notional,
            taker_fee=info.taker_fee if info.taker_fee is not None else DEFAULT_TAKER_FEE,
        )

    def cached_info(self, symbol: Symbol) -> SymbolInfo | None:
        return self._info.get(symbol.code)

    async def last_price(self, symbol: Symbol) -> Decimal | None:
        try:
            price = await self.client.ticker_price(symbol.code)
        except NotYetOpen:
            return None
        except OrderRefused as exc:
            if is_invalid_symbol(exc):
                return None
            raise
        return price if price > 0 else None

    # --- inside --------------------------------------------------------------------------

    async def _rules_or_none(self, symbol: Symbol) -> dict[str, SymbolInfo]:
        """exchangeInfo for one pair; MEXC's "invalid symbol" (a pair not listed yet, the usual case
        before an open) is an answer too, shared as no rules (see `_load_info`)."""
        try:
            return await self.client.exchange_info([symbol.code])
        except OrderRefused as exc:
            if is_invalid_symbol(exc):
                return {}
            raise

    async def _sync_clock(self) -> ClockSync:
        """This client's clock sync, or one another trader's exchange made in the last `_SHARE_TTL`
        (taken, and one /time call sent on this client's order lane to warm its connection). A
        shared sync that failed is made again by this client."""
        client = self.client
        if self.share is None:
            return await client.sync_clock(self.clock_samples)
        made = False

        async def sync() -> tuple[ClockSync, float]:
            nonlocal made
            made = True
            measured = await client.sync_clock(self.clock_samples)
            return measured, time.monotonic()

        try:
            shared = await self.share.get(("clock", client.base_url), sync)
        except ExchangeError:
            if made:
                raise
            return await client.sync_clock(self.clock_samples)
        measured, synced_at = shared
        if made:
            return measured
        # Taken unless this client measured since (a resync after MEXC refused a timestamp).
        client.adopt_clock(measured, synced_at)
        await client.server_time()  # on the order lane: its connection open and warm for the order
        return client.clock_sync or measured

    async def _load_info(self, symbol: Symbol, shared: bool = False) -> SymbolInfo:
        """The pair's rules from exchangeInfo; `shared`: as another trader's exchange of this process
        loaded them in the last `_SHARE_TTL` (see MexcShare), when it did."""
        try:
            if shared and self.share is not None:
                infos = await self.share.get(("rules", self.client.base_url, symbol.code),
                                             lambda: self._rules_or_none(symbol))
            else:
                infos = await self.client.exchange_info([symbol.code])
        except OrderRefused as exc:
            if is_invalid_symbol(exc):
                raise NotFound(f"MEXC lists no {symbol}") from exc
            raise
        info = infos.get(symbol.code)
        if info is None:
            raise NotFound(f"MEXC lists no {symbol}")
        self._info[symbol.code] = info
        return info

    async def _with_fee(self, report: OrderReport) -> OrderReport:
        """The report with the order's commission, once the order is done (see the module doc): a
        buy's only when known or obtainable without waiting for budget (its fill is not held back
        for it: `order_fee` learns it after), a sell's waiting for budget as background work."""
        order_id = report.exchange_order_id
        if not report.status.is_final or report.executed_quantity <= 0 or not order_id:
            return report
        fee = await self._fee(report.symbol, order_id, report.side, report.executed_quantity,
                              patient=report.side is OrderSide.SELL)
        return report if fee is None else replace(report, fee=fee[0], fee_asset=fee[1])

    async def order_fee(
        self, symbol: Symbol, exchange_order_id: str, side: OrderSide, executed_quantity: Decimal, *, wait: bool = True,
    ) -> tuple[Decimal, str] | None:
        """OrderFees: a done order's commission from myTrades (see the module doc), waiting for the
        IP's budget as background work (`wait`), or only with budget free now; None when not learnt."""
        self._seen[symbol.code] = symbol
        return await self._fee(symbol, exchange_order_id, side, executed_quantity, patient=wait)

    async def _fee(
        self, symbol: Symbol, order_id: str, side: OrderSide, executed: Decimal, *, patient: bool,
    ) -> tuple[Decimal, str] | None:
        """(fee, asset) of a done order, kept once learnt; None when not learnt now. `patient`: waits
        for budget (and once more after a 429); else asks only with budget free now, once."""
        fee = self._fees.get(order_id)
        if fee is not None:
            return fee
        try:
            try:
                trades = await self._order_trades(symbol, order_id, executed, patient)
            except RateLimited as exc:
                if exc.code != "429" or not patient:
                    raise
                # MEXC said 429: every client of the IP now holds the group back for Retry-After;
                # once more, waiting that out (or refused here, not sent, when it is too long).
                trades = await self._order_trades(symbol, order_id, executed, patient)
        except ExchangeError as exc:
            if patient:
                _log.warning("commission of order %s unknown (myTrades: %s): reported as none", order_id, exc)
            else:
                _log.info("commission of order %s not known without waiting (myTrades: %s): learnt later",
                          order_id, exc)
            return None
        traded = sum((t.quantity for t in trades), Decimal(0))
        if traded != executed:
            # The trade list can lag the order, or hold more fills than its pages reach:
            # ask again on the next query (the seller reads the balance meanwhile).
            _log.warning("commission of order %s unknown: myTrades shows %s of the %s executed",
                         order_id, plain(traded), plain(executed))
            return None
        fee = _commission(trades, symbol, side)
        if len(self._fees) >= _FEES_KEEP:
            self._fees.pop(next(iter(self._fees)))
        self._fees[order_id] = fee
        return fee

    async def _order_trades(
        self, symbol: Symbol, order_id: str, executed: Decimal, patient: bool = True,
    ) -> list[MexcTrade]:
        """The fills of one order from myTrades, paged: MEXC lists at most 100 per call and has no
        `fromId`, so further pages are asked by time, older (`endTime` = the oldest time seen) and
        then newer (`startTime` = the newest), each fill kept once by its id. At most
        `_TRADE_PAGES` calls. Fills that share one millisecond beyond a page cannot be reached:
        the fills found then fall short of `executed` and the caller reports no fee."""
        found: dict[tuple[str, ...], MexcTrade] = {}

        def keep(page: Sequence[MexcTrade]) -> int:
            new = 0
            for trade in page:
                if trade.order_id == order_id and trade.key not in found:
                    found[trade.key] = trade
                    new += 1
            return new

        def traded() -> Decimal:
            return sum((t.quantity for t in found.values()), Decimal(0))

        page = await self.client.my_trades(symbol.code, order_id=order_id, limit=_TRADES_PER_PAGE, patient=patient)
        keep(page)
        directions = ["older", "newer"] if len(page) >= _TRADES_PER_PAGE else []
        calls = 1
        while directions and traded() < executed and calls < _TRADE_PAGES:
            times = [t.time_ms for t in found.values() if t.time_ms is not None]
            if not times:
                break  # nothing to page by
            if directions[0] == "older":
                page = await self.client.my_trades(symbol.code, order_id=order_id, limit=_TRADES_PER_PAGE,
                                                   end_time_ms=min(times), patient=patient)
            else:
                page = await self.client.my_trades(symbol.code, order_id=order_id, limit=_TRADES_PER_PAGE,
                                                   start_time_ms=max(times), patient=patient)
            calls += 1
            if keep(page) == 0 or len(page) < _TRADES_PER_PAGE:
                directions.pop(0)  # this way holds nothing more
        return list(found.values())

    def _keep(self, key: tuple[str, str, Decimal, str], prepared: PreparedOrder) -> None:
        if len(self._prepared) >= _PREPARED_KEEP:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[key] = prepared

    async def _symbols_with_possible_orders(self) -> list[Symbol]:
        found = dict(self._seen)
        for balance in (await self.client.balances()).values():
            if balance.locked <= 0 or balance.asset in self.quote_assets:
                continue
            for quote in self.quote_assets:
                try:
                    candidate = Symbol(balance.asset, quote)
                except InvalidValue:
                    continue
                found.setdefault(candidate.code, candidate)
        return list(found.values())

    def _report(
        self, order: MexcOrder, symbol: Symbol, asked: ClientOrderId | None, side: OrderSide | None,
    ) -> OrderReport:
        coid = self._client_order_id(order, asked)
        if order.executed_qty is None or order.status is None:
            # The POST reply without fill information: the caller queries to learn more.
            status, quantity, quote = OrderStatus.NEW, Decimal(0), Decimal(0)
        else:
            status = _STATUSES.get(order.status.upper(), OrderStatus.NEW)
            quantity = order.executed_qty
            quote = order.cummulative_quote_qty if order.cummulative_quote_qty is not None else Decimal(0)
        if quantity > 0:
            average = quote / quantity
        else:
            average = order.price if order.price is not None and order.price > 0 else Decimal(0)
        reported_side = side
        if order.side in ("BUY", "SELL"):
            reported_side = OrderSide(order.side)
        if reported_side is None:
            raise UnexpectedReply(f"MEXC order {order.order_id} came without a side")
        return OrderReport(
            symbol=symbol,
            client_order_id=coid,
            exchange_order_id=order.order_id,
            side=reported_side,
            status=status,
            executed_quantity=quantity,
            executed_quote=quote,
            average_price=average,
            fee=Decimal(0),
            fee_asset="",
            created_at=ms_to_datetime(order.time_ms),
        )

    def _client_order_id(self, order: MexcOrder, asked: ClientOrderId | None) -> ClientOrderId:
        if asked is not None:
            return asked
        if order.client_order_id:
            try:
                return ClientOrderId(order.client_order_id)
            except InvalidValue:
                pass
        # Placed elsewhere without a usable client id: label it by the exchange id and
        # remember that, so cancel_order/query_order can address it.
        label = ClientOrderId(("x" + "".join(c for c in order.order_id if c.isalnum() or c in "_-"))[:32])
        self._exchange_ids[label.value] = order.order_id
        return label


def _three_digits(quantity: Decimal) -> Decimal:
    """`quantity` rounded down to three significant digits (no finer than 8 places): the step of
    an order whose pair's rules are unknown. 813.47 -> 813, 8.1347 -> 8.13, 0.081347 -> 0.0813."""
    if quantity <= 0:
        return Decimal(0)
    scale = min(8, max(0, 2 - quantity.adjusted()))
    return round_down(quantity, scale)


def _commission(trades: Sequence[MexcTrade], symbol: Symbol, side: OrderSide) -> tuple[Decimal, str]:
    """(fee, asset) of one order's trades, in the asset it matters in: a buy's fee in the base coin
    (it reduces what is held), else in the quote, else in a third asset (MX: the position's cost
    misses it), and none is 0 in the quote: a buy's fee learnt always names its asset ("" is kept
    for a fee not known). A sell's in the quote; none, or a third asset's, is (0, "") (the exit
    counts its fee in the quote)."""
    by_asset: dict[str, Decimal] = {}
    for trade in trades:
        if trade.commission > 0:
            by_asset[trade.commission_asset] = by_asset.get(trade.commission_asset, Decimal(0)) + trade.commission
    if side is OrderSide.SELL:
        return (by_asset[symbol.quote], symbol.quote) if symbol.quote in by_asset else (Decimal(0), "")
    for asset in (symbol.base, symbol.quote, *sorted(by_asset)):
        if asset in by_asset:
            return by_asset[asset], asset
    return Decimal(0), symbol.quote
