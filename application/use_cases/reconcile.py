"""Start-up reconciliation: before trading, agree with the exchange on every order we sent.

A worker that stopped (crash, kill, deploy) may have left a snipe recorded as submitted with
no reply, or an exit submitted with no fill. Each is resolved by its client order id and the
answer recorded as events, before any new order is placed. Orders the exchange holds that
carry no client id of ours are reported: they are not ours to touch, but a person must know.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from application import repository
from application.errors import ExchangeError
from application.ports import Clock, EventStore, ExchangeTrading, OrderReport
from application.trade_book import TradeBook
from application.use_cases.positions import ManagePositions
from application.use_cases.snipe import MAX_CLOCK_LEAD, ExecuteSnipe, SnipeOutcome
from application.views import TargetView
from domain.position import Position, position_stream
from domain.target import snipe_client_order_id

# Entry fees a round asks for at most (myTrades, weight 10 each, from the IP's budget of 500 per 10 s);
# the newest first, the rest in later rounds.
ENTRY_FEES_PER_ROUND = 20


@dataclass(slots=True)
class ReconciliationReport:
    snipes: list[SnipeOutcome] = field(default_factory=list)
    # Targets still executing afterwards: e.g. a killed worker's lease has not lapsed yet, so
    # their order could not be resolved this time. Not clean: run again after the lease ttl.
    snipes_unresolved: list[str] = field(default_factory=list)
    exits_settled: list[str] = field(default_factory=list)
    exits_unresolved: list[str] = field(default_factory=list)
    unaccounted_orders: list[OrderReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Snipes whose send time has not come (asked with `resume_before_launch=False`): scheduled,
    # or executing with no order possibly sent yet. Nothing to settle: reported, not unclean.
    snipes_pending: list[TargetView] = field(default_factory=list)
    # Positions whose buy's fee, recorded unknown, was learnt in this round (EntryFeeLearnt), and those
    # still unknown after it (asked again in a later round; the exits sell what the account holds).
    # Not unclean: the fill is recorded, only its fee is to come.
    entry_fees_learnt: list[str] = field(default_factory=list)
    entry_fees_unknown: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.snipes_unresolved or self.exits_unresolved or self.unaccounted_orders or self.problems)


class ReconcileWithExchange:
    def __init__(
        self,
        store: EventStore,
        exchange: ExchangeTrading,
        execute_snipe: ExecuteSnipe,
        manage_positions: ManagePositions,
        clock: Clock,
        book: TradeBook,
    ) -> None:
        self.store, self.exchange, self.execute_snipe = store, exchange, execute_snipe
        self.manage_positions, self.clock, self.book = manage_positions, clock, book

    async def __call__(self, *, resume_before_launch: bool = True) -> ReconciliationReport:
        """With `resume_before_launch=False` (a person's `sniper reconcile`), a snipe whose earliest
        send time (its launch on the exchange's clock, at most `MAX_CLOCK_LEAD` ahead of ours) has
        not come is reported pending instead of resumed: no order of it can have left, and resuming
        it would wait for its launch."""
        report = ReconciliationReport()
        await self.book.catch_up(self.store)
        pending = self._not_yet_sendable() if not resume_before_launch else []
        report.snipes_pending = pending
        skip = {t.target_id for t in pending}
        # Snipes left executing: ExecuteSnipe resumes by querying the client order id first,
        # records a fill it finds, and sends again only inside the snipe window.
        for target in self.book.targets_in({"executing"}):
            if target.target_id in skip:
                continue
            try:
                report.snipes.append(await self.execute_snipe(target.target_id))
            except ExchangeError as exc:
                report.problems.append(f"snipe {target.target_id}: {exc}")
        ours: set[str] = {snipe_client_order_id(t).value for t in self.book.targets}
        for view in self.book.open_positions():
            position = await repository.get(self.store, Position, position_stream(view.position_id))
            if position.pending_exit is not None:
                ours.add(position.pending_exit.client_order_id)
            try:
                settled = await self.manage_positions.settle_pending_exit(view.position_id)
            except ExchangeError as exc:
                report.problems.append(f"exit of {view.position_id}: {exc}")
                continue
            if settled is True:
                report.exits_settled.append(view.position_id)
            elif settled is False:
                report.exits_unresolved.append(view.position_id)
        await self._learn_entry_fees(report)
        try:
            for order in await self.exchange.open_orders():
                if order.client_order_id.value not in ours:
                    report.unaccounted_orders.append(order)
        except ExchangeError as exc:
            report.problems.append(f"open orders: {exc}")
        await self.book.catch_up(self.store)
        report.snipes_unresolved = [t.target_id for t in self.book.targets_in({"executing"}) if t.target_id not in skip]
        report.entry_fees_unknown = list(self.book.entry_fees_unknown)
        return report

    async def _learn_entry_fees(self, report: ReconciliationReport) -> None:
        """The buy fees recorded unknown (the snipe could not learn them without waiting for rate
        budget, or its worker stopped first): learnt now where there is budget, never waiting for it
        (see application/use_cases/positions/fees.py)."""
        asked = 0
        for position_id in reversed(list(self.book.entry_fees_unknown)):
            if asked >= ENTRY_FEES_PER_ROUND:
                break
            learnt = await self.manage_positions.learn_entry_fee(position_id)
            asked += learnt is not None
            if learnt:
                report.entry_fees_learnt.append(position_id)

    def _not_yet_sendable(self) -> list[TargetView]:
        now = self.clock.now()
        found = [
            t for t in self.book.targets_in({"scheduled", "executing"})
            if t.status == "scheduled" or (t.execute_at or t.launch_at) - MAX_CLOCK_LEAD > now
        ]
        return sorted(found, key=lambda t: (t.execute_at or t.launch_at, t.target_id))
