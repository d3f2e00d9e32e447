"""The send plan: the exchange's clock measured ahead of the launch (`prepare`), the bracket of
sends around the open, and the pace after it inside the IP's shared rate budget."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from application.errors import ExchangeDataUnreadable, ExchangeError
from application.ports import Clock, ClockOffset, ExchangeTrading, LaunchRoster, PresignedSends
from application.telemetry import Telemetry
from application.timing import SnipeTiming
from application.use_cases.snipe.halt import HALT_READ_TIMEOUT
from application.use_cases.snipe.outcome import unscheduled
from application.use_cases.snipe.run import Plan, Run, Sent
from domain.target import SnipeTarget
from domain.values import ClientOrderId

_log = logging.getLogger(__name__)

# The launch is MEXC's instant: the send follows MEXC's clock as `prepare` measured it, but never
# more than this of its offset (a larger one is a broken measurement or host clock; the deadline stays ours).
MAX_CLOCK_LEAD = timedelta(seconds=5)
# The bracket's first send is aimed to reach the exchange this long before the earliest instant the
# open can be (by what the clock sync allows): room for the wake-up.
_BRACKET_GUARD = timedelta(microseconds=100)
# The first send is built and signed on code and caches gone cold during the wait (measured 150-220 µs
# at load 3 on 2 cores, ~70 µs warm): it leaves this much earlier; arriving early costs one refusal more.
_FIRST_SEND_COST = timedelta(microseconds=200)
# A bracket starts at most this long before the estimated open, and never more than MAX_CLOCK_LEAD
# before the launch by our clock (what a resumed run and the reconciliation assume of an earlier run).
_MAX_BRACKET_LEAD = timedelta(milliseconds=50)
# Sends stay back to back until this long after the latest instant the open can be (and a round trip).
_BRACKET_TAIL = timedelta(milliseconds=1)
# MEXC's rate window (500 requests per endpoint per IP and per UID in it): `SnipeTiming.launch_order_budget`.
_RATE_WINDOW = timedelta(seconds=10)


class SendPlanner:
    def __init__(
        self, clock: Clock, timing: SnipeTiming, telemetry: Telemetry, roster: LaunchRoster | None,
    ) -> None:
        self.clock, self.timing, self.telemetry = clock, timing, telemetry
        # Who else sends into the same launch from this IP (they share its rate budget); None: alone.
        self.roster = roster

    async def prepare(self, target: SnipeTarget, exchange: ExchangeTrading, run: Run | None = None) -> str | None:
        """Warm up for the send and measure the exchange's clock (into `run`: the launch is timed by it).
        Best effort: a passing failure must not cost the snipe (the send path re-syncs on 700003). Exchange
        data that cannot be read is different: no order on a guess; that reason is returned."""
        if target.symbol is None:
            raise unscheduled(target)
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
            await self.join_launch(target, run)
        if run is not None and isinstance(exchange, PresignedSends):
            self._arm(target, exchange, run)
        return None

    def _arm(self, target: SnipeTarget, exchange: PresignedSends, run: Run) -> None:
        """Have the first send's request built, stamped and signed now, so that at the launch it is only
        written. Best effort: otherwise the send builds it itself."""
        if target.symbol is None or target.client_order_id is None:
            raise unscheduled(target)
        try:
            exchange.arm_buy(target.symbol, target.quote_amount, target.max_entry_price,
                             ClientOrderId(target.client_order_id), self.plan(target, run).first)
        except ExchangeError as exc:
            _log.info("snipe %s: the first send is not made ahead (%s: %s)", target.target_id,
                      type(exc).__name__, exc)

    async def join_launch(self, target: SnipeTarget, run: Run) -> None:
        """Count the traders sending into this launch (they share the IP's rate budget): best effort,
        bounded in time; a roster that cannot be reached leaves the last count."""
        if self.roster is None:  # not reached: only called with a roster
            raise RuntimeError("no launch roster to count the traders with")
        if target.symbol is None or target.execute_at is None:
            raise unscheduled(target)
        launch = f"{target.symbol.code}:{int(target.execute_at.timestamp() * 1000)}"
        try:
            count = await asyncio.wait_for(
                self.roster.join(launch, target.target_id, self.timing.snipe_window + self.timing.prepare_ahead),
                HALT_READ_TIMEOUT.total_seconds(),
            )
        except Exception as exc:  # the roster's own errors (e.g. Redis unreachable), or no answer in time
            _log.warning("snipe %s: counting the traders of this launch failed (%s: %s); taking %d",
                         target.target_id, type(exc).__name__, exc, run.traders)
            return
        run.traders = max(1, count)

    def send_at(self, target: SnipeTarget, run: Run) -> datetime:
        """Our clock's reading when the first send leaves; the plan is kept in `run`."""
        run.plan = plan = self.plan(target, run)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("snipe %s: first send %s, back to back until %s (at most %d), then at most %s per 10 s; "
                       "offset %s ± %s, latency %s, %d trader(s)", target.target_id, plan.first.isoformat(),
                       plan.dense_until.isoformat(), plan.dense_sends, plan.paced_sends, run.clock_offset,
                       run.clock_spread, run.latency, run.traders)
        return plan.first

    def plan(self, target: SnipeTarget, run: Run) -> Plan:
        """The sends around the open: on our clock, the launch less the exchange's clock offset.

        Not knowing how sure that offset is (no clock sync, paper): one send there, then `retry_interval`
        apart while the exchange says "not open". Knowing it (MEXC's serverTime is whole ms: see
        MexcRestClient.sync_clock), the open lies within ± spread, covered by a bracket of back-to-back
        sends (one at a time, one client order id): the first aimed to arrive just before it (refused,
        as planned), each next leaving as a refusal comes back, so one arrives within a round trip of the
        open. Fewer sends allowed start the bracket later: its last still arrives after the open.

        N traders on one launch (`LaunchRoster`) share `launch_order_budget` per 10 s: a bracket holds at
        most half of it over N, and after it each sends at most half over N in any 10 s. A trader alone
        keeps `retry_interval` throughout (its client's own limiter keeps to MEXC's 500 / 10 s)."""
        if target.execute_at is None:
            raise unscheduled(target)
        t = self.timing
        open_at = target.execute_at - (run.clock_offset or timedelta(0))
        traders = max(1, run.traders)
        half = t.launch_order_budget // 2
        share = max(1, half // traders)
        paced = None if traders == 1 else share
        if run.clock_spread is None or run.latency is None:
            return Plan(open_at, open_at, 0, paced)
        spread = min(run.clock_spread, _MAX_BRACKET_LEAD)
        latency = min(run.latency, _MAX_BRACKET_LEAD)
        sends = min(t.bracket_sends, share)
        round_trip = 2 * latency
        arrive = max(open_at - spread - _BRACKET_GUARD, open_at + spread - round_trip * (sends - 1))
        first = max(arrive - latency - _FIRST_SEND_COST, open_at - _MAX_BRACKET_LEAD,
                    target.execute_at - MAX_CLOCK_LEAD)
        return Plan(first, open_at + spread + round_trip + _BRACKET_TAIL, sends, paced)

    def pause(self, plan: Plan, sent: Sent) -> timedelta:
        """The wait before the next send after the bracket: `retry_interval`, longer once this trader
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
