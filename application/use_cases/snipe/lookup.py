"""Our order looked up by its client order id: after a reply that said nothing clear, on a run that
found the target executing, and until it is final.

A fresh order may answer "not found" for a while (FACTS.md), and whether MEXC refuses a reused
client order id is undocumented: so an order that may exist is looked for through a grace before
anything is sent again or a failure recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

from application.errors import AmbiguousOutcome, ClockSkew, ExchangeError, RateLimited
from application.ports import Clock, ExchangeTrading, OrderReport, OrderStatus
from application.timing import SnipeTiming
from application.use_cases.snipe.lease import LeaseKeeper
from application.use_cases.snipe.outcome import unscheduled
from application.use_cases.snipe.plan import SendPlanner
from application.use_cases.snipe.run import Run
from domain.target import SnipeTarget
from domain.values import ClientOrderId

# Cap of the backoff between queries of an order that is slow to show.
_MAX_BACKOFF = timedelta(milliseconds=500)
# How long an order may take to show on query (a filled market order may briefly answer "not found"):
# an order known to exist is waited for this long, and one sent with no clear answer (timeout,
# transport error, 5xx) that is still not found this long after it never landed.
VISIBILITY_GRACE = timedelta(seconds=10)


class OrderLookup:
    def __init__(self, clock: Clock, timing: SnipeTiming, planner: SendPlanner, lease: LeaseKeeper) -> None:
        self.clock, self.timing, self.planner, self.lease = clock, timing, planner, lease

    async def resolve(self, target: SnipeTarget, coid: ClientOrderId, exchange: ExchangeTrading) -> OrderReport | None:
        """The order as the exchange reports it, or None when it says there is none. Raises
        AmbiguousOutcome when it cannot be asked (three tries)."""
        if target.symbol is None:
            raise unscheduled(target)
        for _ in range(3):
            try:
                return await exchange.query_order(target.symbol, coid)
            except RateLimited as exc:
                await self.clock.sleep(max(exc.retry_after, self.timing.retry_interval))
            except ClockSkew:
                await self.planner.prepare(target, exchange)
            except AmbiguousOutcome:
                await self.clock.sleep(self.timing.retry_interval)
        raise AmbiguousOutcome(f"could not learn whether order {coid} exists; not resending")

    async def await_visible(
        self, target: SnipeTarget, coid: ClientOrderId, give_up: datetime, exchange: ExchangeTrading,
        run: Run | None = None,
    ) -> OrderReport | None:
        """Query until the order shows or `give_up` has passed (at least once, and once at `give_up`).
        With `run`, the lease is renewed when due meanwhile; a renewal refused ends the look
        (`run.lease_lost`)."""
        delay = self.timing.retry_interval
        while True:
            found = await self.resolve(target, coid, exchange)
            now = self.clock.now()
            if found is not None or now >= give_up:
                return found
            if run is not None and not await self.lease.renew_if_due(target, run):
                return None
            await self.clock.sleep(min(delay, give_up - now))
            delay = min(delay * 2, _MAX_BACKOFF)

    async def confirm(
        self, target: SnipeTarget, report: OrderReport, deadline: datetime, exchange: ExchangeTrading
    ) -> OrderReport:
        """Follow an acknowledged order to a final status (or a partial fill), by query only: it exists,
        so a query's error is answered by asking again, never by a resend. Raises AmbiguousOutcome when
        nothing final was learnt within the grace (the target stays executing)."""
        if target.symbol is None:
            raise unscheduled(target)
        give_up = max(deadline, self.clock.now()) + VISIBILITY_GRACE
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
                await self.planner.prepare(target, exchange)
                continue
            except ExchangeError as exc:
                # A timeout, a 5xx, a refusal of the query itself (e.g. a firewall's 403): back off.
                backoff = min(backoff * 2, _MAX_BACKOFF)
                last_error, delay = exc, backoff
                continue
            if again is not None:
                report = again
        if report.status.is_final or is_fill(report):
            return report
        why = f" (last query: {last_error})" if last_error is not None else ""
        raise AmbiguousOutcome(
            f"order {report.client_order_id} is still {report.status.value} and its fill is unknown{why}; not resending"
        )


def is_fill(report: OrderReport) -> bool:
    return report.executed_quantity > 0 and report.status in (
        OrderStatus.FILLED, OrderStatus.PARTIALLY_CANCELED, OrderStatus.PARTIALLY_FILLED
    )
