"""Executing a snipe: the timed market buy at launch, and the position it opens."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field, replace
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
    ClockOffset,
    EventStore,
    ExchangeAccounts,
    ExchangeTrading,
    LaunchRoster,
    Lease,
    LockService,
    MarketData,
    OrderReport,
    OrderStatus,
    PresignedSends,
    TraderDirectory,
)
from application.pre_trade import risk_refusals, trade_proposal
from application.telemetry import FILLS, NO_TELEMETRY, SNIPE_LATENCY_MS, Telemetry
from application.timing import SnipeTiming
from application.trade_book import TradeBook
from domain.events import Cause
from domain.position import Position
from domain.target import SnipeTarget, TargetStatus, target_stream
from domain.values import ClientOrderId

_log = logging.getLogger(__name__)

# Cap of the backoff between queries of an order that is slow to show.
_MAX_BACKOFF = timedelta(milliseconds=500)
# How long an order may take to show on query (FACTS.md: a filled market order may briefly answer
# "not found"). An order known to exist is waited for this long; a send with no clear answer
# (timeout, transport error, 5xx) is looked for this long after it before the run records
# anything else: found, it is the fill; still "not found" after it, it never landed.
_VISIBILITY_GRACE = timedelta(seconds=10)
# Before a resend after a send with no clear answer, the order is looked for this long (never past
# the deadline): the whole visibility grace. A resend that found the first order landed after all
# would rely on MEXC refusing a reused client order id, which is undocumented: a double buy. A
# shorter wait (2 s) was found unsafe by an audit (a landed order "not found" for 3 s was bought twice).
_RESEND_GRACE = _VISIBILITY_GRACE
# MEXC's code for a balance too small for the order (FACTS.md).
_INSUFFICIENT_BALANCE = "10101"
# How long before the launch the emergency stop is read for the last time (see _wait_for_launch):
# far enough ahead that the read (a database round trip on a thread at normal priority) is over
# well before the first send on a loaded host; a stop pressed after it is seen by the checks
# between sends (the first starts at the first resend) and still cancels what is open.
_HALT_CHECK_LEAD = timedelta(milliseconds=300)
# While sends are retried, the stop is read again (and the lease renewed when due) at most this
# often, in a background task whose answer is looked at before a later resend: off the send path.
_RECHECK_EVERY = timedelta(milliseconds=200)
# No lease renewal in this last stretch before `_RENEW_LEAD` before the launch (and none after the
# launch's halt check; see _wait_for_launch); a sixth of the lease's ttl when that is shorter, so
# the lease still holds past the launch.
_QUIET_BEFORE_LAUNCH = timedelta(seconds=1)
_RENEW_LEAD = timedelta(milliseconds=50)
# A send starts only while the lease holds for a send's time in flight (`SnipeTiming.send_in_flight`)
# and this much more: room for the lock service's clock and a pause between the check and the send.
_LEASE_MARGIN = timedelta(milliseconds=250)
# A renewal that failed (the lock service unreachable) is tried again this much later.
_RENEW_RETRY = timedelta(seconds=1)
# An emergency stop read this recently is still an answer when the store cannot be reached at the
# check just before the launch (a store or Redis hiccup in the last seconds must not cost the
# snipe). The stop is read again this long less a second before that check, and that check gives
# up on the store after `_HALT_READ_TIMEOUT` (a hanging read must not hold the order back).
_HALT_READ_MAX_AGE = timedelta(seconds=5)
_HALT_READ_TIMEOUT = timedelta(milliseconds=500)
# An executor finding the snipe's lease held tries again this often, for one ttl (and this much
# more): a living holder renews its lease, a dead one's lapses within a ttl.
_LEASE_WAIT_EVERY = timedelta(milliseconds=500)
# How long the outcome of a send (a fill above all) is retried while the store cannot be reached,
# before the run gives up and leaves the target executing for the reconciliation.
_RECORD_RETRY_FOR = timedelta(seconds=30)
_RECORD_RETRY_MAX = timedelta(seconds=2)
# The launch is MEXC's instant: the send goes out when MEXC's clock (as measured by `prepare`)
# reads the launch time. An offset larger than this is a broken measurement or a broken host
# clock: the send then follows at most this much of it (the deadline stays ours).
MAX_CLOCK_LEAD = timedelta(seconds=5)
# The bracket around the open (see `_plan`). Its first send is aimed to reach the exchange this long
# before the earliest instant the open can be (by what the clock sync allows): room for the wake-up.
_BRACKET_GUARD = timedelta(microseconds=100)
# From the first send's start to its bytes on the wire: the order is built and signed then, on code
# and caches gone cold during the wait (measured 150-220 µs at load 3 on 2 cores, against ~70 µs
# warm). The first send leaves this much earlier; an early arrival costs one refusal more.
_FIRST_SEND_COST = timedelta(microseconds=200)
# A bracket starts at most this long before the estimated open, however little the sync learnt (and
# never more than MAX_CLOCK_LEAD before the launch by our clock: what `_resume` and the
# reconciliation assume of an earlier run).
_MAX_BRACKET_LEAD = timedelta(milliseconds=50)
# Sends stay back to back until this long after the latest instant the open can be (and a round trip).
_BRACKET_TAIL = timedelta(milliseconds=1)
# MEXC's rate window (500 requests per endpoint per IP and per UID in it): `SnipeTiming.launch_order_budget`.
_RATE_WINDOW = timedelta(seconds=10)


def _unscheduled(target: SnipeTarget) -> RuntimeError:
    """Not reached: a target has its symbol, times, order id and plan before it is executed."""
    return RuntimeError(f"snipe target {target.target_id} ({target.status.value}) is missing its schedule")


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
    # Sends the exchange refused as not open yet (10007): expected in the bracket around the open,
    # at most `SnipeTiming.bracket_sends` there (see ExecuteSnipe._plan).
    not_open: int = 0
    first_send_at: datetime | None = None  # when the first send of this run started (our clock)


@dataclass(slots=True)
class _Run:
    """One executor's hold on one snipe: its lease, when it last renewed it and last read the
    emergency stop, and the background check (stop and lease) in flight while sends retry."""

    lease: Lease
    renewed_at: datetime
    checked_at: datetime
    check: asyncio.Task[str | None] | None = None
    lease_lost: bool = False
    renew_tried_at: datetime | None = None  # the last renewal that had no answer (lock service unreachable)
    # The last emergency stop read that succeeded: when, and what it said (None: no stop).
    halt_read_at: datetime | None = None
    halt_state: str | None = None
    # Set when the check before the launch could not reach the store and took `halt_state` from
    # the read `halt_read_at`, this old: said in the history with the outcome.
    halt_read_age: timedelta | None = None
    # How far the exchange's clock is ahead of ours, as `prepare` measured it (None: not known).
    clock_offset: timedelta | None = None
    # How sure that offset is (the true one lies within this of it) and how long a send takes to
    # reach the exchange (None: not known; then no bracket: one send at the estimated open).
    clock_spread: timedelta | None = None
    latency: timedelta | None = None
    # How many traders (this one included) send into this launch from this IP (`LaunchRoster`).
    traders: int = 1
    plan: _Plan | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """When the sends go out (our clock): the first at `first`; after a "not open yet" the next
    leaves at once while fewer than `dense_sends` have gone and the refused one left before
    `dense_until`; after that, `retry_interval` apart, and at most `paced_sends` in any 10 s (None:
    no such bound, a trader alone on its launch). One send at a time, one client order id."""

    first: datetime
    dense_until: datetime
    dense_sends: int
    paced_sends: int | None


@dataclass(slots=True)
class _Sent:
    """How the sends of one run ended."""

    held: OrderReport | None = None  # the exchange holds our order: as acknowledged, or as found
    attempts: int = 0
    not_open: int = 0  # refused as not open yet (10007)
    first_at: datetime | None = None  # when the first send started (our clock)
    last_at: datetime | None = None  # when the last send started (our clock)
    paced: deque[datetime] = field(default_factory=deque)  # starts of the sends after the bracket, last 10 s
    error: ExchangeError | None = None  # the last reply, when no order is held
    unclear_at: datetime | None = None  # when the last send with no clear answer (timeout, 5xx) ended
    halted: str | None = None  # an emergency stop seen between sends
    lease_lost: str | None = None  # why our lease on the snipe lapsed, was taken over, or may lapse


class ExecuteSnipe:
    """Buy one target at launch: at most one buy per target, whatever happens in between.

    The client order id is derived from the target, the order is recorded as submitted
    before it is sent, and an unclear reply is resolved by querying that id (through the
    visibility grace) before any resend and before any failure is recorded. A target found
    already executing (a restart, a job retried, or a second worker after the lease lapsed) is
    resolved the same way before anything is sent: once an earlier run may have sent, its order
    is looked for through the visibility grace first. The lease is renewed while the executor
    waits for the launch and while it retries, so no other executor takes a snipe over from a
    live one; when it cannot be renewed, no resend starts once it may lapse.
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
        roster: LaunchRoster | None = None,
    ) -> None:
        self.store, self.exchange, self.market, self.traders = store, exchange, market, traders
        self.locks, self.clock, self.book, self.timing = locks, clock, book, timing
        self.telemetry = telemetry
        # Where each target's order goes (paper or live). Without it, every order goes to `exchange`.
        self.accounts = accounts
        # Who else sends into the same launch from this IP (they share its rate budget); None: alone.
        self.roster = roster

    async def __call__(self, target_id: str) -> SnipeOutcome:
        with self.telemetry.span("use_case.execute_snipe", target_id=target_id):
            # A lease held by another executor is tried again for one ttl: a living holder keeps
            # renewing it, a killed one's lapses within that ttl, and its snipe, taken up at once,
            # may still be sent inside its window (a restarted worker must not wait for a later round).
            give_up = self.clock.now() + self.timing.lease_ttl + _LEASE_WAIT_EVERY
            while True:
                asked_at = self.clock.now()
                async with self.locks.lease(f"snipe:{target_id}", self.timing.lease_ttl) as held:
                    if held:
                        run = _Run(held, renewed_at=asked_at, checked_at=asked_at)
                        outcome = await self._execute(target_id, run)
                        break
                if self.clock.now() >= give_up or not await self._pending(target_id):
                    outcome = SnipeOutcome(target_id, SnipeResult.SKIPPED, "another executor holds this snipe")
                    break
                await self.clock.sleep(_LEASE_WAIT_EVERY)
            self.telemetry.annotate(result=outcome.result.value, attempts=outcome.attempts)
            return outcome

    async def _pending(self, target_id: str) -> bool:
        target = await repository.get(self.store, SnipeTarget, target_stream(target_id))
        return target.status in (TargetStatus.SCHEDULED, TargetStatus.EXECUTING)

    async def _execute(self, target_id: str, run: _Run) -> SnipeOutcome:
        target = await repository.get(self.store, SnipeTarget, target_stream(target_id))
        if target.symbol is not None:
            self.telemetry.annotate(symbol=target.symbol.code, user_id=target.user_id, mode=_mode(target))
        if target.status not in (TargetStatus.SCHEDULED, TargetStatus.EXECUTING):
            return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"target is {target.status.value}")
        if (target.symbol is None or target.deadline_at is None or target.execute_at is None
                or target.client_order_id is None):
            raise _unscheduled(target)
        coid = ClientOrderId(target.client_order_id)

        if target.status is TargetStatus.SCHEDULED:
            read_at = self.clock.now()
            refusal = await self._pre_trade_refusal(target)
            if refusal is not None:
                return refusal
            run.halt_read_at, run.halt_state = read_at, None
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
            unreadable = await self._prepare(target, exchange, run)
            if unreadable is not None:
                target.fail(unreadable, self._cause(target))
                await repository.save(self.store, target)
                return SnipeOutcome(target_id, SnipeResult.FAILED, unreadable)
            # Recorded before the send: after a crash we know an order may exist.
            target.submit_order(self._cause(target), run.lease.token, run.lease.epoch or None)
            try:
                await repository.save(self.store, target)
            except ConcurrencyConflict as exc:
                # Another executor (a process whose lease we cannot see) recorded first: it owns
                # the send. Standing down here is what keeps the two from both sending.
                return SnipeOutcome(target_id, SnipeResult.SKIPPED, f"another executor submitted first ({exc})")
            refusal = await self._wait_for_launch(target, run)
            if refusal is not None:
                return refusal
            sent = await self._send_until_deadline(target, coid, target.deadline_at, exchange, run)
        else:
            try:
                exchange = await self._account(target)
            except AccountUnavailable as exc:
                # Left executing: nothing can be learnt or recorded without its account.
                return SnipeOutcome(target_id, SnipeResult.FAILED, f"cannot resolve the order: {exc}")
            resumed = await self._resume(target, coid, exchange, run)
            if isinstance(resumed, SnipeOutcome):
                return resumed
            sent = resumed
        outcome = await self._settle(target, coid, sent, exchange, run)
        plan = run.plan
        if plan is not None and sent.first_at is not None and _log.isEnabledFor(logging.DEBUG):
            _log.debug("snipe %s: the first send started %d µs after its planned instant", target_id,
                       (sent.first_at - plan.first) // timedelta(microseconds=1))
        if sent.first_at is not None:
            outcome = replace(outcome, first_send_at=sent.first_at)
        if sent.not_open:
            _log.info("snipe %s: %d of %d sends refused as not open yet (bracket of at most %d sends, %d trader(s))",
                      target_id, sent.not_open, sent.attempts, plan.dense_sends if plan else 0, run.traders)
            outcome = replace(outcome, not_open=sent.not_open)
        return outcome

    async def _settle(
        self, target: SnipeTarget, coid: ClientOrderId, sent: _Sent, exchange: ExchangeTrading, run: _Run
    ) -> SnipeOutcome:
        """Record how the sends ended. An order the exchange holds is followed to its final
        status by query. With none held, the order is looked for once more, and through the
        visibility grace when a send had no clear answer, before a failure, a rejection or a halt
        is recorded: a send that landed is a fill, whatever the later replies said. When the
        exchange cannot tell, AmbiguousOutcome is raised and the target stays executing (the
        reconciliation resolves it by its client order id)."""
        if target.deadline_at is None:
            raise _unscheduled(target)
        if sent.lease_lost is not None:
            # Another executor may hold the snipe now: what is left to learn or record is its to do.
            return SnipeOutcome(
                target.target_id, SnipeResult.SKIPPED, f"{sent.lease_lost}; left executing for its holder",
                sent.attempts,
            )
        held = sent.held
        if held is None and sent.unclear_at is not None:
            give_up = sent.unclear_at + _VISIBILITY_GRACE
            if isinstance(sent.error, OrderRefused) and sent.error.code == _INSUFFICIENT_BALANCE:
                # A resend refused for the balance the unclear send may have spent: evidence that
                # it landed. Looked for a whole grace more before anything is recorded.
                give_up = max(give_up, self.clock.now() + _VISIBILITY_GRACE)
            held = await self._await_visible(target, coid, give_up, exchange)
        elif held is None and sent.halted is None and not isinstance(sent.error, OrderRefused):
            # The deadline passed: one last look (an order a crashed run sent may have shown since).
            held = await self._resolve(target, coid, exchange)
        if held is not None and sent.held is None and sent.attempts:
            self._accepted(target)
        final = None if held is None else await self._confirm(target, held, target.deadline_at, exchange)
        if final is not None and _is_fill(final):
            return await self._record_fill(target, final, sent.attempts, await self._quantity_scale(target, final),
                                           run.halt_read_age)
        cause = self._cause(target)
        result = SnipeResult.FAILED
        if final is not None:
            detail = f"order {coid} ended {final.status.value} with nothing bought after {sent.attempts} attempts"
            if target.max_entry_price is not None:
                detail = await self._cap_missed(target, coid, final)
            target.fail(detail, cause)
        elif sent.halted is not None:
            detail, result = sent.halted, SnipeResult.REFUSED
            target.fail(detail, cause)
        elif isinstance(sent.error, OrderRefused):
            target.record_rejection(sent.error.code, str(sent.error), sent.attempts, cause)
            detail = f"rejected: {sent.error}"
        else:
            last = f" (last reply: {sent.error})" if sent.error else ""
            detail = f"no fill by the deadline after {sent.attempts} attempts{last}"
            target.fail(self._with_halt_note(detail, run), cause)
        try:
            await self._record(target)
        except ConcurrencyConflict as exc:
            # Another executor (its lease lapsed into ours) recorded this snipe's outcome first.
            return SnipeOutcome(target.target_id, SnipeResult.SKIPPED, f"outcome already recorded ({exc})",
                                sent.attempts)
        return SnipeOutcome(target.target_id, result, detail, sent.attempts)

    async def _cap_missed(self, target: SnipeTarget, coid: ClientOrderId, final: OrderReport) -> str:
        """Why a capped entry (an IMMEDIATE_OR_CANCEL limit buy at the cap) bought nothing: the
        price as it stands just after (best effort: one read, never holding the record back long)."""
        if target.symbol is None or target.max_entry_price is None:
            raise _unscheduled(target)
        cap = format(target.max_entry_price, "f")
        price: Decimal | None = None
        try:
            price = await asyncio.wait_for(self.market.last_price(target.symbol), _HALT_READ_TIMEOUT.total_seconds())
        except Exception as exc:  # the price is only the explanation: the outcome is recorded without it
            _log.warning("snipe %s: no price for the capped entry's record (%s: %s)", target.target_id,
                         type(exc).__name__, exc)
        ended = f"order {coid} ended {final.status.value} with nothing bought"
        if price is not None and price > target.max_entry_price:
            return f"no fill at or below the cap {cap}: the price opened at {format(price, 'f')} ({ended})"
        seen = "" if price is None else f"; the last price is {format(price, 'f')}"
        return f"no fill at or below the cap {cap}: nothing was offered at or below it when the order arrived " \
               f"({ended}{seen})"

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
        # The pair's minimum order value is left to the exchange here: the check runs right before
        # the send, where no extra call may stand (prepare loads the pair's rules for the order).
        proposal = trade_proposal(
            self.book, settings, quote_amount=target.quote_amount, quote_asset=target.quote_asset,
            exit_plan=target.exit_plan, day=cause.at.date(),
        )
        reasons = risk_refusals(proposal, live=target.live, settings=settings)
        if reasons:
            target.refuse_by_risk(reasons, cause)
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, "; ".join(reasons))
        return None

    async def _wait_for_launch(self, target: SnipeTarget, run: _Run) -> SnipeOutcome | None:
        """Sleep until the send time (the launch instant on the exchange's clock, `_send_at`),
        renewing the lease; a halt that came meanwhile fails the snipe unsent.

        The lease is renewed every third of its ttl while the wait lasts (a snipe may be started
        hours ahead, e.g. `sniper snipe --at`), so the reconciliation or another worker cannot
        take an executing target over from this live executor; the fencing token stays the
        same. It is renewed once more just before the last `_QUIET_BEFORE_LAUNCH` (or sixth of the
        ttl) before `_RENEW_LEAD` before the launch (never after the halt check), and not in that
        stretch, so the last stretch of the wait makes no lock-service call; the lease then holds
        past the launch for the first sends, and the checks between resends renew it. A renewal
        refused (the lease lapsed or has another holder) stands this executor down with nothing
        sent. A renewal with no answer (the lock service cannot be reached) leaves the lease as it
        was: the send still goes out while it surely holds.

        The halt is read from the store `_HALT_CHECK_LEAD` before the launch, not after it:
        reading it after the wake-up put a database round trip between the launch instant and the
        order, and reading it just before (50 ms) let that read, on a database thread at normal
        priority, hold the first send up on a loaded host. A halt recorded in the last
        `_HALT_CHECK_LEAD` before the launch is seen by the checks between resends (the first
        starts at the first resend), if any, and its emergency stop still cancels what is open.
        It is also read a few seconds earlier: when the store cannot be reached at the last check,
        a read less than `_HALT_READ_MAX_AGE` old is the answer (said with the outcome in the
        history)."""
        send_at = self._send_at(target, run)
        check_at = send_at - _HALT_CHECK_LEAD
        quiet = min(_QUIET_BEFORE_LAUNCH, self.timing.lease_ttl / 6)
        quiet_from = min(send_at - _RENEW_LEAD - quiet, check_at)
        refresh_at = check_at - _HALT_READ_MAX_AGE + timedelta(seconds=1)
        refreshed = run.halt_read_at is not None and run.halt_read_at >= refresh_at
        while (wake := min(self._next_renewal(run), quiet_from if refreshed else refresh_at)) < quiet_from:
            await self.clock.sleep_until(wake)
            if not refreshed and self.clock.now() >= refresh_at:
                refreshed = True
                try:
                    await self._read_halt(target, run)
                except Exception as exc:  # the store's own errors: the check at the launch asks again
                    _log.warning("snipe %s: reading the emergency stop failed (%s: %s)", target.target_id,
                                 type(exc).__name__, exc)
            if self.clock.now() >= self._next_renewal(run) and not await self._renew(target, run):
                return self._lost_while_waiting(target)
        await self.clock.sleep_until(quiet_from)
        if not await self._renew(target, run):
            return self._lost_while_waiting(target)
        if self.roster is not None:
            # Every trader of this launch has joined by now (they prepare `prepare_ahead` before it):
            # the bracket is shaped by the final count. Not later: no lock-service call in the last stretch.
            await self._join_launch(target, run)
            send_at = self._send_at(target, run)
            check_at = send_at - _HALT_CHECK_LEAD
        await self.clock.sleep_until(check_at)
        halted = await self._halt_at_launch(target, run)
        # The check between sends is due at the first resend after the bracket's back-to-back
        # sends (`_plan`): a stop pressed since this read is seen then, and no database read (a
        # background task that takes the loop for a millisecond or two) holds up a resend in the
        # bracket. Without a bracket, at the first resend.
        dense_until = send_at if run.plan is None else max(run.plan.dense_until, send_at)
        run.checked_at = max(self.clock.now(), dense_until - _RECHECK_EVERY)
        if not halted:
            await self.clock.sleep_until(send_at)
        if halted:
            target.fail(self._with_halt_note(halted, run), self._cause(target))
            await self._record(target)
            return SnipeOutcome(target.target_id, SnipeResult.REFUSED, halted)
        return None

    def _lost_while_waiting(self, target: SnipeTarget) -> SnipeOutcome:
        return SnipeOutcome(
            target.target_id, SnipeResult.SKIPPED,
            "lost the lease on this snipe while waiting for the launch; nothing sent, left executing for its holder",
        )

    async def _read_halt(self, target: SnipeTarget, run: _Run) -> str | None:
        """Read the emergency stop; a read that succeeded is kept in `run` (see `_halt_at_launch`)."""
        read_at = self.clock.now()
        halted = await self._halted(target.user_id)
        run.halt_read_at, run.halt_state = read_at, halted
        return halted

    async def _halt_at_launch(self, target: SnipeTarget, run: _Run) -> str | None:
        """The stop as read just before the launch. When the store cannot be reached (or does not
        answer within `_HALT_READ_TIMEOUT`), the last read that succeeded is the answer if it is less
        than `_HALT_READ_MAX_AGE` old: a stop pressed since is seen by the checks between resends and
        still cancels what is open. With no read that recent, the store's error is raised and
        nothing is sent."""
        try:
            return await asyncio.wait_for(self._read_halt(target, run), _HALT_READ_TIMEOUT.total_seconds())
        except Exception as exc:  # the store's own errors, or no answer in time
            age = None if run.halt_read_at is None else self.clock.now() - run.halt_read_at
            if age is None or age > _HALT_READ_MAX_AGE:
                raise
            run.halt_read_age = age
            _log.warning(
                "snipe %s: the store could not be reached for the emergency stop before the launch (%s: %s); "
                "taking the read %d ms old (no stop then)", target.target_id, type(exc).__name__, exc,
                age // timedelta(milliseconds=1),
            )
            return run.halt_state

    def _with_halt_note(self, detail: str, run: _Run) -> str:
        if run.halt_read_age is None:
            return detail
        return f"{detail} (emergency stop taken from a read {run.halt_read_age // timedelta(milliseconds=1)} ms old: " \
               "the store could not be reached before the launch)"

    @property
    def _renew_every(self) -> timedelta:
        return self.timing.lease_ttl / 3

    def _next_renewal(self, run: _Run) -> datetime:
        due = run.renewed_at + self._renew_every
        return due if run.renew_tried_at is None else max(due, run.renew_tried_at + _RENEW_RETRY)

    async def _renew(self, target: SnipeTarget, run: _Run) -> bool:
        """Renew the lease; False only when the lock service refused (the lease lapsed or has
        another holder). A renewal with no answer (the lock service cannot be reached) is logged
        and leaves the lease as it was: `_lease_holds` bounds what may still be sent on it."""
        asked_at = self.clock.now()
        try:
            renewed = await self.locks.renew(run.lease, self.timing.lease_ttl)
        except Exception as exc:  # the lock service's own errors (e.g. Redis unreachable)
            run.renew_tried_at = asked_at
            _log.warning(
                "snipe %s: renewing its lease failed (%s: %s); it holds until %s by our clock",
                target.target_id, type(exc).__name__, exc, (run.renewed_at + self.timing.lease_ttl).isoformat(),
            )
            return True
        if not renewed:
            run.lease_lost = True
            return False
        run.renewed_at, run.renew_tried_at = asked_at, None
        return True

    async def _renew_if_due(self, target: SnipeTarget, run: _Run) -> bool:
        """Renew the lease when a third of its ttl has passed since the last renewal; False when
        the renewal was refused (the lease lapsed or has another holder)."""
        return self.clock.now() < self._next_renewal(run) or await self._renew(target, run)

    async def _account(self, target: SnipeTarget) -> ExchangeTrading:
        if self.accounts is None:
            return self.exchange
        return await self.accounts.trading_for(target.user_id, target.live)

    async def _prepare(self, target: SnipeTarget, exchange: ExchangeTrading, run: _Run | None = None) -> str | None:
        """Best effort: a passing failure (clock sync, 5xx) must not cost the snipe; the send
        path handles what the exchange then says (700003 re-syncs). Data the exchange sent
        that cannot be read is different: no order on a guess. Returns that reason, if any.
        The exchange's clock offset it measured goes into `run` (the launch is timed by it)."""
        if target.symbol is None:
            raise _unscheduled(target)
        try:
            offset = await exchange.prepare(target.symbol)
        except ExchangeDataUnreadable as exc:
            return f"not trading on unreadable exchange data: {exc}"
        except ExchangeError:
            return None
        if run is not None and offset is not None:
            run.clock_offset = max(-MAX_CLOCK_LEAD, min(offset, MAX_CLOCK_LEAD))
            if isinstance(offset, ClockOffset):
                run.clock_spread, run.latency = offset.spread, offset.latency
            self.telemetry.annotate(clock_offset_ms=int(offset / timedelta(milliseconds=1)))
        if run is not None and self.roster is not None:
            await self._join_launch(target, run)
        if run is not None and isinstance(exchange, PresignedSends):
            self._arm(target, exchange, run)
        return None

    def _arm(self, target: SnipeTarget, exchange: PresignedSends, run: _Run) -> None:
        """Have the first send's request made now (built, stamped for the planned send, signed), so
        that at the launch it is only written. Best effort: the send builds it itself otherwise,
        and says what the exchange thinks of an order outside the rules."""
        if target.symbol is None or target.client_order_id is None:
            raise _unscheduled(target)
        try:
            exchange.arm_buy(target.symbol, target.quote_amount, target.max_entry_price,
                             ClientOrderId(target.client_order_id), self._plan(target, run).first)
        except ExchangeError as exc:
            _log.info("snipe %s: the first send is not made ahead (%s: %s)", target.target_id,
                      type(exc).__name__, exc)

    async def _join_launch(self, target: SnipeTarget, run: _Run) -> None:
        """Count the traders sending into this launch (they share the IP's rate budget): best effort,
        bounded in time; a roster that cannot be reached leaves the last count."""
        if self.roster is None:  # not reached: only called with a roster
            raise RuntimeError("no launch roster to count the traders with")
        if target.symbol is None or target.execute_at is None:
            raise _unscheduled(target)
        launch = f"{target.symbol.code}:{int(target.execute_at.timestamp() * 1000)}"
        try:
            count = await asyncio.wait_for(
                self.roster.join(launch, target.target_id, self.timing.snipe_window + self.timing.prepare_ahead),
                _HALT_READ_TIMEOUT.total_seconds(),
            )
        except Exception as exc:  # the roster's own errors (e.g. Redis unreachable), or no answer in time
            _log.warning("snipe %s: counting the traders of this launch failed (%s: %s); taking %d",
                         target.target_id, type(exc).__name__, exc, run.traders)
            return
        run.traders = max(1, count)

    def _send_at(self, target: SnipeTarget, run: _Run) -> datetime:
        """Our clock's reading when the first send leaves (see `_plan`)."""
        run.plan = plan = self._plan(target, run)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("snipe %s: first send %s, back to back until %s (at most %d), then at most %s per 10 s; "
                       "offset %s ± %s, latency %s, %d trader(s)", target.target_id, plan.first.isoformat(),
                       plan.dense_until.isoformat(), plan.dense_sends, plan.paced_sends, run.clock_offset,
                       run.clock_spread, run.latency, run.traders)
        return plan.first

    def _plan(self, target: SnipeTarget, run: _Run) -> _Plan:
        """The sends around the open. The open on our clock is the launch less the exchange's
        clock offset. Without knowing how sure that offset is (no clock sync, paper), one send
        goes there, and sends follow `retry_interval` apart while the exchange says "not open".

        With it (MEXC: serverTime in whole ms, so a lone sample is only good to a millisecond; see
        MexcRestClient.sync_clock), the open lies in [open - spread, open + spread]: a bracket of
        sends, back to back, one at a time with the same client order id, covers that interval.
        The first is aimed to arrive just before its start (it is refused as not open, which the
        plan expects); each refusal comes back a round trip later and the next send leaves at
        once, so the first send after the open arrives within a round trip of it. With few sends
        allowed (many traders share the IP's budget) the bracket starts later, so that its last
        send still arrives after the latest instant the open can be.

        The budget: N traders on one launch (`LaunchRoster`) share `launch_order_budget` sends per
        10 s (MEXC: 500 per endpoint per IP). Each bracket holds at most half of it over N
        (and `bracket_sends`); after it, a trader sends `retry_interval` apart but at most its
        share of the other half (half over N) in any 10 s: together they stay inside the budget
        in any 10 s. A trader alone on its launch keeps `retry_interval` throughout (its client's
        own limiter holds it inside MEXC's 500 / 10 s)."""
        if target.execute_at is None:
            raise _unscheduled(target)
        t = self.timing
        open_at = target.execute_at - (run.clock_offset or timedelta(0))
        traders = max(1, run.traders)
        half = t.launch_order_budget // 2
        share = max(1, half // traders)
        paced = None if traders == 1 else share
        if run.clock_spread is None or run.latency is None:
            return _Plan(open_at, open_at, 0, paced)
        spread = min(run.clock_spread, _MAX_BRACKET_LEAD)
        latency = min(run.latency, _MAX_BRACKET_LEAD)
        sends = min(t.bracket_sends, share)
        round_trip = 2 * latency
        arrive = max(open_at - spread - _BRACKET_GUARD, open_at + spread - round_trip * (sends - 1))
        first = max(arrive - latency - _FIRST_SEND_COST, open_at - _MAX_BRACKET_LEAD,
                    target.execute_at - MAX_CLOCK_LEAD)
        return _Plan(first, open_at + spread + round_trip + _BRACKET_TAIL, sends, paced)

    async def _halted(self, user_id: str) -> str | None:
        await self.book.catch_up(self.store)
        return self.book.halted(user_id)

    async def _send_until_deadline(
        self, target: SnipeTarget, coid: ClientOrderId, deadline: datetime, exchange: ExchangeTrading, run: _Run
    ) -> _Sent:
        """Send until the exchange holds the order, refuses it, or the deadline passes. Between
        resends (never before the first send) the background check may stop the loop: an
        emergency stop, or a lost lease. What the sends left is for `_settle` to record."""
        if target.symbol is None:
            raise _unscheduled(target)
        sent = _Sent()
        plan = run.plan or self._plan(target, run)
        try:
            while self.clock.now() < deadline:
                if sent.attempts and self._stop_between_sends(target, run, sent):
                    return sent
                if not self._lease_holds(run):  # the fence: checked between resends above, here before the first
                    sent.lease_lost = self._lease_lapsing(target, run)
                    return sent
                sent.attempts += 1
                sent.last_at = self.clock.now()
                if sent.attempts == 1:
                    sent.first_at = sent.last_at
                try:
                    report = await (
                        exchange.place_market_buy(target.symbol, target.quote_amount, coid)
                        if target.max_entry_price is None
                        # The cap: an IMMEDIATE_OR_CANCEL limit buy at it. What it leaves unfilled is
                        # cancelled by the exchange and settled as it ended: never sent again.
                        else exchange.place_capped_buy(target.symbol, target.quote_amount, target.max_entry_price, coid)
                    )
                except NotYetOpen as exc:
                    sent.error = exc
                    sent.not_open += 1
                    if sent.attempts < plan.dense_sends and sent.last_at < plan.dense_until:
                        # Inside the bracket: the next send leaves at once (see `_plan`). Judged by
                        # when the refused send left, not by when its refusal came back: a reply
                        # slowed by a loaded host says nothing about whether the open has come since.
                        continue
                    await self._sleep_renewing(target, run, self._pause(plan, sent))
                    continue
                except RateLimited as exc:
                    sent.error = exc
                    await self.clock.sleep(max(exc.retry_after, self.timing.retry_interval))
                    continue
                except ClockSkew as exc:
                    sent.error = exc
                    await self._prepare(target, exchange)
                    continue
                except OrderAlreadyExists as exc:
                    # Our order exists (an earlier send of ours, or another worker's): never send
                    # again, wait for it to become visible (a fresh order may briefly be "not found").
                    sent.error = exc
                    found = await self._await_visible(
                        target, coid, max(deadline, self.clock.now()) + _VISIBILITY_GRACE, exchange
                    )
                    if found is None:
                        raise AmbiguousOutcome(f"order {coid} exists but never became visible; not resending") from exc
                    report = found
                except AmbiguousOutcome as exc:
                    # No clear answer: the order may have landed. Look for it through the resend
                    # grace before sending again (a landed order can be "not found" for a moment).
                    sent.error = exc
                    sent.unclear_at = self.clock.now()
                    found = await self._await_visible(
                        target, coid, min(self.clock.now() + _RESEND_GRACE, deadline), exchange, run
                    )
                    if found is None:
                        if run.lease_lost:
                            sent.lease_lost = self._lease_lapsing(target, run)
                            return sent
                        continue
                    report = found
                except OrderRefused as exc:
                    sent.error = exc
                    return sent
                # The exchange holds our order. Following it to its fill happens outside this
                # loop: an error while querying it must never lead to a resend.
                self._accepted(target)
                sent.held, sent.error = report, None
                return sent
            return sent
        finally:
            # No await here: looks at the check that may have finished since the last resend and
            # amends `sent` (the object returned) with what it found.
            self._end_checks(target, run, sent)

    def _pause(self, plan: _Plan, sent: _Sent) -> timedelta:
        """The wait before the next send after the bracket: `retry_interval`, longer when this trader
        has sent its share (`plan.paced_sends`) of the sends after the bracket in the last 10 s."""
        pause = self.timing.retry_interval
        if plan.paced_sends is None or sent.last_at is None:
            return pause
        paced = sent.paced
        if sent.attempts > plan.dense_sends:
            paced.append(sent.last_at)
        horizon = self.clock.now() + pause - _RATE_WINDOW
        while paced and paced[0] <= horizon:
            paced.popleft()
        if len(paced) >= plan.paced_sends:
            pause = max(pause, paced[0] + _RATE_WINDOW - self.clock.now())
        return pause

    async def _sleep_renewing(self, target: SnipeTarget, run: _Run, pause: timedelta) -> None:
        """Sleep `pause`; a long one (a trader holding its share of the budget) renews the lease
        when due meanwhile, so that the sends may go on after it. A renewal refused sets
        `run.lease_lost`: the next send does not start."""
        until = self.clock.now() + pause
        while (left := until - self.clock.now()) > timedelta(0):
            await self.clock.sleep(min(left, self._renew_every / 2))
            if left > self._renew_every / 2 and not await self._renew_if_due(target, run):
                return

    def _stop_between_sends(self, target: SnipeTarget, run: _Run, sent: _Sent) -> bool:
        """Before a resend: whether the background check found a reason to stop (recorded in
        `sent`), and a new check started when one is due. Never waits for the check: the stop
        is read while the loop sleeps or sends, so a resend is not held up by a database read.

        A check that failed (store or lock service unreachable) is no answer: the sends go on
        and the next check asks again. But no resend starts once the lease may lapse (its last
        renewal is too old: renewals failed or hang), since another executor could then take the
        snipe over and send beside us; the run stands down and leaves the target executing."""
        if run.lease_lost:  # a renewal refused (while sleeping between sends, or by the check)
            sent.lease_lost = "lost the lease on this snipe"
            return True
        task = run.check
        if task is not None and task.done():
            run.check = None
            halted = self._answer(target, task)
            if run.lease_lost:
                sent.lease_lost = "lost the lease on this snipe"
                return True
            if halted is not None:
                sent.halted = halted
                return True
        if not self._lease_holds(run):
            sent.lease_lost = self._lease_lapsing(target, run)
            return True
        if run.check is None and self.clock.now() - run.checked_at >= _RECHECK_EVERY:
            run.checked_at = self.clock.now()
            run.check = asyncio.ensure_future(self._check(target, run))
        return False

    async def _check(self, target: SnipeTarget, run: _Run) -> str | None:
        """The background check between resends: renew the lease when due, read the stop. A call
        that fails is logged and counts as no answer (the sends go on; the next check retries):
        a failed renewal leaves the lease as it was, and `_lease_holds` bounds how long the
        sends may go on without one."""
        if not await self._renew_if_due(target, run):
            return None
        try:
            return await self._read_halt(target, run)
        except Exception as exc:  # the store's own errors (e.g. the database unreachable)
            _log.warning(
                "snipe %s: reading the emergency stop failed (%s: %s); read again at the next check",
                target.target_id, type(exc).__name__, exc,
            )
            return None

    def _lease_holds(self, run: _Run) -> bool:
        """Whether a send may start now: our lease surely holds (by our clock, from when the last
        renewal that succeeded was asked for) for a send's whole time in flight and a margin. So
        every send of ours is in the exchange's hands, or refused by it, before our lease can
        lapse, and an executor that takes the snipe over after that finds by one query (through
        the visibility grace) whether we bought (see `_resume`). Renewed every third of the ttl, the
        lease only runs this low when renewals failed or hang."""
        left = run.renewed_at + self.timing.lease_ttl - self.clock.now()
        return left > self.timing.send_in_flight + _LEASE_MARGIN

    def _lease_lapsing(self, target: SnipeTarget, run: _Run) -> str:
        why = (f"the lease on this snipe may lapse before a send could land (last renewed at "
               f"{run.renewed_at.isoformat()}, renewals failed); stopped sending")
        _log.warning("snipe %s: %s", target.target_id, why)
        return why

    def _answer(self, target: SnipeTarget, task: asyncio.Task[str | None]) -> str | None:
        """What a finished background check found: the stop's reason, or None (no stop, or no
        answer: a check that failed is logged)."""
        if task.cancelled():
            return None
        exc = task.exception()
        if exc is not None:
            _log.warning("snipe %s: the check between resends failed (%s: %s)",
                         target.target_id, type(exc).__name__, exc)
            return None
        return task.result()

    def _end_checks(self, target: SnipeTarget, run: _Run, sent: _Sent) -> None:
        """The sends are over. A check still in flight is no longer wanted (cancelled: no
        answer). One that finished since the last resend is looked at, never dropped: when the
        loop ran to the deadline with no order held, a stop it found is recorded as a stop seen
        between resends is (REFUSED, with its reason), and a lost lease (or one that may lapse)
        stands the run down as between resends. With an order held, the fill is ours to record
        whatever the check found: that is logged. After a refusal, the refusal is recorded."""
        task, run.check = run.check, None
        halted = None
        if task is not None:
            if task.done():
                halted = self._answer(target, task)
            else:
                task.cancel()
        lease_lost = run.lease_lost and sent.lease_lost is None
        if lease_lost or halted is not None:
            found = "a lost lease" if lease_lost else f"an emergency stop ({halted})"
            _log.warning("snipe %s: the last check between sends found %s", target.target_id, found)
        if sent.held is not None or sent.halted is not None or sent.lease_lost is not None:
            return
        if isinstance(sent.error, OrderRefused):
            return
        if lease_lost:
            sent.lease_lost = "lost the lease on this snipe"
        elif not self._lease_holds(run):
            sent.lease_lost = self._lease_lapsing(target, run)
        elif halted is not None:
            sent.halted = halted

    def _accepted(self, target: SnipeTarget) -> None:
        """The exchange holds our order: how long after the launch instant that became known."""
        if target.execute_at is None:
            raise _unscheduled(target)
        waited = max(self.clock.now() - target.execute_at, timedelta(0))
        self.telemetry.observe(SNIPE_LATENCY_MS, waited / timedelta(milliseconds=1), mode=_mode(target))

    def _earlier_lease_until(self, target: SnipeTarget, run: _Run) -> datetime:
        """Until when (our clock) the run that submitted this snipe may believe in its lease.

        When the lock service kept its fence counter since that submission (the epoch recorded
        with it is our lease's, and its token is below ours), that lease lapsed before we took
        ours. Otherwise the counter started again since (Redis lost its data): the earlier run's
        renewals are refused, but it may not reach the lock service to learn that, so it may
        believe in its lease up to one ttl after its last renewal, which came before the restart.
        Every holder after the restart waits that out, not only the first (which may give up or
        release early): until one ttl after the counter's start, or after our own take when we
        started it or its start is not known.
        """
        lease, ttl = run.lease, self.timing.lease_ttl
        if (lease.epoch and target.lease_epoch == lease.epoch
                and target.lease_token is not None and target.lease_token < lease.token):
            return run.renewed_at
        if lease.first or lease.epoch_started_at is None:
            return run.renewed_at + ttl
        return max(run.renewed_at, lease.epoch_started_at + ttl)

    async def _resume(
        self, target: SnipeTarget, coid: ClientOrderId, exchange: ExchangeTrading, run: _Run
    ) -> _Sent | SnipeOutcome:
        """The target was left executing: find out what the exchange did before sending again.

        An earlier run may have sent: from its send time (the launch on MEXC's clock, at most
        `MAX_CLOCK_LEAD` before ours) until its lease lapsed. A run starts a send only while its
        lease holds (by its own clock) for a send's whole time in flight, so whatever it sent was
        taken in or refused by the exchange before its lease lapsed, and that was before we got
        the lease; unless the lock service lost its data since: then the earlier run may believe
        in its lease for up to one ttl after the fence counter restarted (`_earlier_lease_until`).
        No send starts after the deadline either.
        An order taken in may answer "not found" for a while (FACTS.md), and whether MEXC refuses
        a reused client order id is undocumented. So the order is looked for until the visibility
        grace has passed since the last moment an earlier send could have been taken in, before
        anything is sent. When that moment is before the earliest send time, no earlier run can
        have sent: one query suffices.

        When nothing reached the exchange, the order is sent as a first run would send it:
        prepared (warm connection, MEXC's clock offset), at launch, and not while an emergency
        stop is active.
        """
        if target.deadline_at is None or target.execute_at is None:
            raise _unscheduled(target)
        horizon = self._earlier_lease_until(target, run)
        last_taken_in = min(horizon, target.deadline_at + self.timing.send_in_flight)
        if last_taken_in < target.execute_at - MAX_CLOCK_LEAD:
            found = await self._resolve(target, coid, exchange)
        else:
            found = await self._await_visible(target, coid, last_taken_in + _VISIBILITY_GRACE, exchange, run)
        if found is not None:
            return _Sent(held=found)
        if run.lease_lost or not await self._renew_if_due(target, run):
            return SnipeOutcome(
                target.target_id, SnipeResult.SKIPPED,
                "lost the lease on this snipe while resolving it; nothing sent, left executing for its holder",
            )
        # As a first run: the connection warmed and MEXC's clock offset measured for the launch
        # (not once the window has closed: nothing will be sent).
        unreadable = await self._prepare(target, exchange, run) if self.clock.now() < target.deadline_at else None
        if unreadable is not None:
            target.fail(unreadable, self._cause(target))
            await repository.save(self.store, target)
            return SnipeOutcome(target.target_id, SnipeResult.FAILED, unreadable)
        refusal = await self._wait_for_launch(target, run)
        if refusal is not None:
            return refusal
        return await self._send_until_deadline(target, coid, target.deadline_at, exchange, run)

    async def _resolve(self, target: SnipeTarget, coid: ClientOrderId, exchange: ExchangeTrading) -> OrderReport | None:
        """The order as the exchange reports it, or None when it says there is none. Raises
        AmbiguousOutcome when it cannot be asked (three tries)."""
        if target.symbol is None:
            raise _unscheduled(target)
        for _ in range(3):
            try:
                return await exchange.query_order(target.symbol, coid)
            except RateLimited as exc:
                await self.clock.sleep(max(exc.retry_after, self.timing.retry_interval))
            except ClockSkew:
                await self._prepare(target, exchange)
            except AmbiguousOutcome:
                await self.clock.sleep(self.timing.retry_interval)
        raise AmbiguousOutcome(f"could not learn whether order {coid} exists; not resending")

    async def _await_visible(
        self, target: SnipeTarget, coid: ClientOrderId, give_up: datetime, exchange: ExchangeTrading,
        run: _Run | None = None,
    ) -> OrderReport | None:
        """Query the order until it shows or `give_up` has passed (at least once, and once at
        `give_up`), backing off up to `_MAX_BACKOFF` between queries. With `run`, its lease is
        renewed when due meanwhile; a renewal refused ends the look (`run.lease_lost`)."""
        delay = self.timing.retry_interval
        while True:
            found = await self._resolve(target, coid, exchange)
            now = self.clock.now()
            if found is not None or now >= give_up:
                return found
            if run is not None and not await self._renew_if_due(target, run):
                return None
            await self.clock.sleep(min(delay, give_up - now))
            delay = min(delay * 2, _MAX_BACKOFF)

    async def _quantity_scale(self, target: SnipeTarget, report: OrderReport) -> int:
        """The pair's quantity step, for selling later. A pair this new may be missing from the
        exchange's symbol list; then the fill itself shows the step the exchange used."""
        if target.symbol is None:
            raise _unscheduled(target)
        try:
            return (await self.market.symbol_rules(target.symbol)).quantity_scale
        except (NotFound, ExchangeError):
            exponent = report.executed_quantity.normalize().as_tuple().exponent
            return max(0, -exponent) if isinstance(exponent, int) else 8

    async def _confirm(
        self, target: SnipeTarget, report: OrderReport, deadline: datetime, exchange: ExchangeTrading
    ) -> OrderReport:
        """A market order may be acknowledged before it fills: follow it to a final status (or a
        partial fill), by query only. The order exists, so an error from a query (a rate limit,
        a timeout, a 5xx, a firewall's 403) is answered by asking again, never by a resend.
        Raises AmbiguousOutcome when nothing final was learnt within the grace: the target stays
        executing and is resolved later by its client order id."""
        if target.symbol is None:
            raise _unscheduled(target)
        give_up = max(deadline, self.clock.now()) + _VISIBILITY_GRACE
        interval = delay = backoff = self.timing.retry_interval
        last_error: ExchangeError | None = None
        while not report.status.is_final and self.clock.now() < give_up:
            await self.clock.sleep(delay)
            delay = interval
            try:
                again = await exchange.query_order(target.symbol, report.client_order_id)
            except RateLimited as exc:
                last_error, delay = exc, max(exc.retry_after, interval)
                continue
            except ClockSkew as exc:
                last_error = exc
                await self._prepare(target, exchange)
                continue
            except ExchangeError as exc:
                # A timeout, a 5xx, a refusal of the query itself (e.g. a firewall's 403): back off.
                backoff = min(backoff * 2, _MAX_BACKOFF)
                last_error, delay = exc, backoff
                continue
            if again is not None:
                report = again
        if report.status.is_final or _is_fill(report):
            return report
        why = f" (last query: {last_error})" if last_error is not None else ""
        raise AmbiguousOutcome(
            f"order {report.client_order_id} is still {report.status.value} and its fill is unknown{why}; not resending"
        )

    async def _record_fill(
        self, target: SnipeTarget, report: OrderReport, attempts: int, quantity_scale: int,
        halt_read_age: timedelta | None = None,
    ) -> SnipeOutcome:
        if target.symbol is None or target.execute_at is None or target.exit_plan is None:
            raise _unscheduled(target)
        now = self.clock.now()
        cause = self._cause(target, now)
        latency = Decimal((now - target.execute_at) // timedelta(microseconds=1)) / 1000
        target.record_fill(
            report.exchange_order_id, report.average_price, report.executed_quantity, report.executed_quote,
            report.fee, report.fee_asset, attempts, latency, cause,
            halt_read_age_ms=None if halt_read_age is None else halt_read_age // timedelta(milliseconds=1),
        )
        position = Position.open(
            target.target_id, target.user_id, target.symbol, report.average_price, report.executed_quantity,
            report.executed_quote, report.fee, report.fee_asset, quantity_scale, target.exit_plan, cause,
        )
        try:
            await self._record(target, position)
        except ConcurrencyConflict as exc:
            # Someone recorded this fill already; the exchange still holds one order.
            return SnipeOutcome(target.target_id, SnipeResult.SKIPPED, f"fill already recorded ({exc})", attempts,
                                report)
        self.telemetry.count(FILLS, side="buy", mode=_mode(target))
        try:
            await self.book.catch_up(self.store)
        except Exception as exc:  # recorded: the trade book catches up at its next read
            _log.warning("snipe %s: fill recorded, the trade book not caught up (%s: %s)", target.target_id,
                         type(exc).__name__, exc)
        return SnipeOutcome(target.target_id, SnipeResult.FILLED, f"filled after {attempts} attempts", attempts, report)

    async def _record(self, target: SnipeTarget, *others: Position) -> None:
        """Save what a send led to. The store's errors (a database outage across the launch) are
        retried for `_RECORD_RETRY_FOR`, backing off: the outcome of a send, a fill above all, is
        never dropped for a passing outage. After that the error is raised: the target stays
        executing and the reconciliation records the order it finds by its client order id. A
        save that landed though its answer was lost comes back as ConcurrencyConflict."""
        give_up = self.clock.now() + _RECORD_RETRY_FOR
        delay = self.timing.retry_interval
        while True:
            try:
                await repository.save(self.store, target, *others)
                return
            except ConcurrencyConflict:
                raise
            except Exception as exc:  # the store's own errors (e.g. the database unreachable)
                if self.clock.now() >= give_up:
                    raise
                delay = min(max(delay * 2, timedelta(milliseconds=100)), _RECORD_RETRY_MAX)
                _log.warning("snipe %s: recording its outcome failed (%s: %s); trying again in %d ms",
                             target.target_id, type(exc).__name__, exc, delay // timedelta(milliseconds=1))
                await self.clock.sleep(delay)

    def _cause(self, target: SnipeTarget, at: datetime | None = None) -> Cause:
        return Cause(at or self.clock.now(), target.target_id)


def _is_fill(report: OrderReport) -> bool:
    return report.executed_quantity > 0 and report.status in (
        OrderStatus.FILLED, OrderStatus.PARTIALLY_CANCELED, OrderStatus.PARTIALLY_FILLED
    )
