"""Executing a snipe: the timed market buy at launch, and the position it opens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from application import repository
from application.errors import (
    AccountUnavailable,
    AmbiguousOutcome,
    ClockSkew,
    ConcurrencyConflict,
    ExchangeDataUnreadable,
    ExchangeError,
    NotFound,
    NotYetOpen,
    OrderAlreadyExists,
    OrderRefused,
    RateLimited,
)
from application.ports import (
    Clock,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    LockService,
    MarketData,
    OrderReport,
    OrderStatus,
    TraderDirectory,
)
from application.telemetry import FILLS, NO_TELEMETRY, SNIPE_LATENCY_MS, Telemetry
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from domain.events import Cause
from domain.position import Position
from domain.risk import TradeProposal, risk_limits
from domain.target import SnipeTarget, TargetStatus, target_stream
from domain.values import ClientOrderId


# Cap of the backoff after unclear replies, and how long an order known to exist may take to show.
_MAX_BACKOFF = timedelta(milliseconds=500)
_VISIBILITY_GRACE = timedelta(seconds=10)
# How long before the launch the emergency stop is read for the last time (see _wait_for_launch).
_HALT_CHECK_LEAD = timedelta(milliseconds=50)


def _mode(target: SnipeTarget) -> str:
    return "live" if target.live else "paper"


class SnipeResult(Enum):
    FILLED = "filled"
    FAILED = "failed"
    REFUSED = "refused"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class SnipeOutcome:
    target_id: str
    result: SnipeResult
    detail: str
    attempts: int = 0
    fill: OrderReport | None = None


class ExecuteSnipe:
    """Buy one target at launch: at most one buy per target, whatever happens in between.

    The client order id is derived from the target, the order is recorded as submitted
    before it is sent, and an unclear reply is resolved by querying that id before any
    resend. A target found already executing (a restart, or a second worker after the
    lease lapsed) is resolved the same way before anything is sent.
    """

    def __init__(
        self,
        store: EventStore,
        exchange: ExchangeTrading,
        market: MarketData,
        traders: TraderDirectory,
        locks: LockService,
        clock: Clock,
        book: TradeBook,
        timing: SnipeTiming,
        telemetry: Telemetry = NO_TELEMETRY,
        accounts: ExchangeAccounts | None = None,
    ) -> None:
        self.store, self.exchange, self.market, self.traders = store, exchange, market, traders
        self.locks, self.clock, self.book, self.timing = locks, clock, book, timing
        self.telemetry = telemetry
        # Where each target's order goes (paper or live). Without it, every order goes to `exchange`.
        self.accounts = accounts

    async def __call__(self, target_id: str) -> SnipeOutcome:
        with self.telemetry.span("use_case.execute_snipe", target_id=target_id):
            async with self.locks.lease(f"snipe:{target_id}", self.timing.lease_ttl) as held:
                if not held:
                    outcome = SnipeOutcome(target_id, SnipeResult.SKIPPED, "another executor holds this snipe")
                else:
                    outcome = await self._execute(target_id)
            self.telemetry.annotate(result=outcome.result.value, attempts=outcome.attempts)
            return outcome

    async def _execute(self, target_id: str) -> SnipeOutcome:
        target = await repository.get(self.store, SnipeTarget, target_stream(target_id))
        if target.symbol is not None:
            self.telemetry.annotate(symbol=target.symbol.code, user_id=target.user_id, mode=_mode(target))
        if target.status not in (TargetStatus.SCHEDULED, TargetStatus.EXECUTING):
            return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"target is {target.status.value}")
        assert target.symbol is not None and target.deadline_at is not None and target.execute_at is not None
        assert target.client_order_id is not None
        coid = ClientOrderId(target.client_order_id)

        if target.status is TargetStatus.SCHEDULED:
            refusal = await self._pre_trade_refusal(target)
            if refusal is not None:
                return refusal
            if self.clock.now() >= target.deadline_at:
                target.fail("snipe window closed before the executor ran", self._cause(target))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, "snipe window closed")
            try:
                exchange = await self._account(target)
            except AccountUnavailable as exc:
                target.fail(str(exc), self._cause(target))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, str(exc))
            unreadable = await self._prepare(target, exchange)
            if unreadable is not None:
                target.fail(unreadable, self._cause(target))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, unreadable)
            # Recorded before the send: after a crash we know an order may exist.
            target.submit_order(self._cause(target))
            try:
                await repository.save(self.store, target)
            except ConcurrencyConflict as exc:
                # Another executor (a process whose lease we cannot see) recorded first: it owns
                # the send. Standing down here is what keeps the two from both sending.
                return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"another executor submitted first ({exc})")
            refusal = await self._wait_for_launch(target)
            if refusal is not None:
                return refusal
            report, attempts, error = await self._send_until_deadline(target, coid, target.deadline_at, exchange)
        else:
            try:
                exchange = await self._account(target)
            except AccountUnavailable as exc:
                # Left executing: nothing can be learnt or recorded without its account.
                return SnipeOutcome(target_id, SnipeResult.FAILED, f"cannot resolve the order: {exc}")
            resumed = await self._resume(target, coid, exchange)
            if isinstance(resumed, SnipeOutcome):
                return resumed
            report, attempts, error = resumed

        if report is not None:
            return await self._record_fill(target, report, attempts, await self._quantity_scale(target, report))
        cause = self._cause(target)
        if isinstance(error, OrderRefused):
            target.record_rejection(error.code, str(error), attempts, cause)
            detail = f"rejected: {error}"
        else:
            detail = f"no fill by the deadline after {attempts} attempts" + (f" (last reply: {error})" if error else "")
            target.fail(detail, cause)
        try:
            await repository.save(self.store, target)
        except ConcurrencyConflict as exc:
            # Another executor (its lease lapsed into ours) recorded this snipe's outcome first.
            return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"outcome already recorded ({exc})", attempts)
        return SnipeOutcome(target_id, SnipeResult.FAILED, detail, attempts)

    # --- steps -----------------------------------------------------------------------------

    async def _pre_trade_refusal(self, target: SnipeTarget) -> SnipeOutcome | None:
        halted = await self._halted(target.user_id)
        cause = self._cause(target)
        if halted:
            target.fail(halted, cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, halted)
        try:
            settings = await self.traders.settings_for(target.user_id)
        except NotFound:
            target.fail("the user no longer exists", cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, "unknown user")
        proposal = TradeProposal(
            quote_amount=target.quote_amount,
            quote_asset=target.quote_asset,
            open_positions=len(self.book.open_positions(target.user_id)),
            open_exposure=self.book.open_exposure(target.user_id),
            realised_pnl_today=self.book.realised_pnl_on(target.user_id, cause.at.date()),
            profile=settings.risk,
        )
        reasons = risk_limits().unmet(proposal)
        if target.live and not settings.risk.live:
            reasons.append("live trading is not enabled for this user")
        if reasons:
            target.refuse_by_risk(reasons, cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, "; ".join(reasons))
        return None

    async def _wait_for_launch(self, target: SnipeTarget) -> SnipeOutcome | None:
        """Sleep until the send time; a halt that came meanwhile fails the snipe unsent.

        The halt is read from the store just before the launch, not after it: reading it after
        the wake-up put a database round trip between the launch instant and the order. A halt
        recorded in the last `_HALT_CHECK_LEAD` before the launch is not seen by this snipe (its
        emergency stop still cancels what is open)."""
        assert target.execute_at is not None
        await self.clock.sleep_until(target.execute_at - _HALT_CHECK_LEAD)
        halted = await self._halted(target.user_id)
        if not halted:
            await self.clock.sleep_until(target.execute_at)
        if halted:
            target.fail(halted, self._cause(target))
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, halted)
        return None

    async def _account(self, target: SnipeTarget) -> ExchangeTrading:
        if self.accounts is None:
            return self.exchange
        return await self.accounts.trading_for(target.user_id, target.live)

    async def _prepare(self, target: SnipeTarget, exchange: ExchangeTrading) -> str | None:
        """Best effort: a passing failure (clock sync, 5xx) must not cost the snipe; the send
        path handles what the exchange then says (700003 re-syncs). Data the exchange sent
        that cannot be read is different: no order on a guess. Returns that reason, if any."""
        assert target.symbol is not None
        try:
            await exchange.prepare(target.symbol)
        except ExchangeDataUnreadable as exc:
            return f"not trading on unreadable exchange data: {exc}"
        except ExchangeError:
            pass
        return None

    async def _halted(self, user_id: str) -> str | None:
        await self.book.catch_up(self.store)
        return self.book.halted(user_id)

    async def _send_until_deadline(
        self, target: SnipeTarget, coid: ClientOrderId, deadline: datetime, exchange: ExchangeTrading
    ) -> tuple[OrderReport | None, int, ExchangeError | None]:
        assert target.symbol is not None
        attempts = unresolved = 0
        last_error: ExchangeError | None = None
        while self.clock.now() < deadline:
            attempts += 1
            try:
                report = await exchange.place_market_buy(target.symbol, target.quote_amount, coid)
                self._accepted(target)
                return await self._confirm(target, report, deadline, exchange), attempts, None
            except NotYetOpen as exc:
                last_error = exc
                await self.clock.sleep(self.timing.retry_interval)
            except RateLimited as exc:
                last_error = exc
                await self.clock.sleep(max(exc.retry_after, self.timing.retry_interval))
            except ClockSkew as exc:
                last_error = exc
                await self._prepare(target, exchange)
            except OrderAlreadyExists as exc:
                # Our order exists (an earlier send of ours, or another worker's): never send
                # again, wait for it to become visible (a fresh order may briefly be "not found").
                last_error = exc
                found = await self._await_visible(target, coid, deadline, exchange)
                if found is not None:
                    self._accepted(target)
                    return await self._confirm(target, found, deadline, exchange), attempts, None
                raise AmbiguousOutcome(f"order {coid} exists but never became visible; not resending") from exc
            except AmbiguousOutcome as exc:
                last_error = exc
                unresolved += 1
                found = await self._resolve(target, coid, exchange)
                if found is not None:
                    self._accepted(target)
                    return await self._confirm(target, found, deadline, exchange), attempts, None
                # The exchange has no such order: sending again cannot make two. Back off so
                # a struggling exchange is not hammered (and a slow order has time to show).
                await self.clock.sleep(min(self.timing.retry_interval * 2**unresolved, _MAX_BACKOFF))
            except OrderRefused as exc:
                return None, attempts, exc
        # One last look: an ambiguous send may have landed after all.
        found = await self._resolve(target, coid, exchange)
        if found is not None:
            self._accepted(target)
            return await self._confirm(target, found, deadline, exchange), attempts, None
        return None, attempts, last_error

    def _accepted(self, target: SnipeTarget) -> None:
        """The exchange holds our order: how long after the launch instant that became known."""
        assert target.execute_at is not None
        waited = max(self.clock.now() - target.execute_at, timedelta(0))
        self.telemetry.observe(SNIPE_LATENCY_MS, waited / timedelta(milliseconds=1), mode=_mode(target))

    async def _resume(
        self, target: SnipeTarget, coid: ClientOrderId, exchange: ExchangeTrading
    ) -> tuple[OrderReport | None, int, ExchangeError | None] | SnipeOutcome:
        """The target was left executing: find out what the exchange did before sending again.

        When nothing reached the exchange, the order is sent as a first run would send it:
        at launch, and not while an emergency stop is active.
        """
        assert target.deadline_at is not None
        found = await self._resolve(target, coid, exchange)
        if found is not None:
            return await self._confirm(target, found, target.deadline_at, exchange), 0, None
        refusal = await self._wait_for_launch(target)
        if refusal is not None:
            return refusal
        return await self._send_until_deadline(target, coid, target.deadline_at, exchange)

    async def _resolve(self, target: SnipeTarget, coid: ClientOrderId, exchange: ExchangeTrading) -> OrderReport | None:
        assert target.symbol is not None
        for _ in range(3):
            try:
                return await exchange.query_order(target.symbol, coid)
            except (AmbiguousOutcome, RateLimited):
                await self.clock.sleep(self.timing.retry_interval)
        raise AmbiguousOutcome(f"could not learn whether order {coid} exists; not resending")

    async def _await_visible(
        self, target: SnipeTarget, coid: ClientOrderId, deadline: datetime, exchange: ExchangeTrading
    ) -> OrderReport | None:
        give_up = deadline + _VISIBILITY_GRACE
        delay = self.timing.retry_interval
        while True:
            found = await self._resolve(target, coid, exchange)
            if found is not None or self.clock.now() >= give_up:
                return found
            await self.clock.sleep(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _quantity_scale(self, target: SnipeTarget, report: OrderReport) -> int:
        """The pair's quantity step, for selling later. A pair this new may be missing from the
        exchange's symbol list; then the fill itself shows the step the exchange used."""
        assert target.symbol is not None
        try:
            return (await self.market.symbol_rules(target.symbol)).quantity_scale
        except (NotFound, ExchangeError):
            exponent = report.executed_quantity.normalize().as_tuple().exponent
            return max(0, -exponent) if isinstance(exponent, int) else 8

    async def _confirm(
        self, target: SnipeTarget, report: OrderReport, deadline: datetime, exchange: ExchangeTrading
    ) -> OrderReport | None:
        """A market order may be acknowledged before it fills: follow it to a final status."""
        assert target.symbol is not None
        give_up = deadline + timedelta(seconds=10)
        while not report.status.is_final and self.clock.now() < give_up:
            await self.clock.sleep(self.timing.retry_interval)
            again = await exchange.query_order(target.symbol, report.client_order_id)
            if again is not None:
                report = again
        if report.executed_quantity > 0 and report.status in (
            OrderStatus.FILLED, OrderStatus.PARTIALLY_CANCELED, OrderStatus.PARTIALLY_FILLED
        ):
            return report
        return None

    async def _record_fill(self, target: SnipeTarget, report: OrderReport, attempts: int, quantity_scale: int) -> SnipeOutcome:
        assert target.symbol is not None and target.execute_at is not None and target.exit_plan is not None
        now = self.clock.now()
        cause = self._cause(target, now)
        latency = Decimal((now - target.execute_at) // timedelta(microseconds=1)) / 1000
        target.record_fill(
            report.exchange_order_id, report.average_price, report.executed_quantity, report.executed_quote,
            report.fee, report.fee_asset, attempts, latency, cause,
        )
        position = Position.open(
            target.target_id, target.user_id, target.symbol, report.average_price, report.executed_quantity,
            report.executed_quote, report.fee, report.fee_asset, quantity_scale, target.exit_plan, cause,
        )
        try:
            await repository.save(self.store, target, position)
        except ConcurrencyConflict as exc:
            # Someone recorded this fill already; the exchange still holds one order.
            return SnipeOutcome(target.target_id, SnipeResult.SKIPPED, f"fill already recorded ({exc})", attempts, report)
        self.telemetry.count(FILLS, side="buy", mode=_mode(target))
        await self.book.catch_up(self.store)
        return SnipeOutcome(target.target_id, SnipeResult.FILLED, f"filled after {attempts} attempts", attempts, report)

    def _cause(self, target: SnipeTarget, at: datetime | None = None) -> Cause:
        return Cause(at or self.clock.now(), target.target_id)
