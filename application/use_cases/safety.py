"""The emergency stop: activate (cancel open orders, refuse new ones) and clear."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from application import repository
from application.errors import AccountUnavailable, ApplicationError, ExchangeError
from application.ports import Clock, EventStore, ExchangeAccounts, ExchangeTrading
from application.trade_book import TradeBook
from domain.events import Cause
from domain.safety import GLOBAL_SCOPE, SafetySwitch, safety_stream


@dataclass(slots=True)
class EmergencyStopResult:
    """`already_active_since`: the stop was active already (since then) and nothing new was
    recorded; the open orders were still looked for and cancelled."""

    scope: str
    cancelled_orders: list[str] = field(default_factory=list)
    cancel_failures: list[str] = field(default_factory=list)
    already_active_since: datetime | None = None
    reason: str | None = None  # why the stop is active, as recorded


async def _switch(store: EventStore, scope: str) -> SafetySwitch:
    found = await repository.find(store, SafetySwitch, safety_stream(scope))
    return found if found is not None else SafetySwitch.for_scope(scope)


class ActivateEmergencyStop:
    """Halt trading for one user or for everyone ('global'). The halt is recorded first,
    so no new order starts while the open ones are being cancelled.

    `by` names who activated it; `automatic` says it was a rule (the safety monitor), not a
    person: see domain.safety.Halt for what each lets through.

    Open orders are cancelled on `exchange` (the operator's account) and, once `with_accounts`
    gave the ExchangeAccounts that route each trader's orders, on the accounts the halted
    users' orders go to: a user's stop cancels on that user's accounts (live and paper), the
    global stop on the operator's and on every account a trader in the trade book trades on.
    """

    def __init__(self, store: EventStore, exchange: ExchangeTrading, clock: Clock, book: TradeBook) -> None:
        self.store, self.exchange, self.clock, self.book = store, exchange, clock, book
        self.accounts: ExchangeAccounts | None = None

    def with_accounts(self, accounts: ExchangeAccounts) -> ActivateEmergencyStop:
        """Cancel on the traders' own accounts too (per-user keys), not only on `exchange`."""
        self.accounts = accounts
        return self

    async def __call__(self, scope: str, reason: str, by: str, *, automatic: bool = False) -> EmergencyStopResult:
        """Pressing again while the stop holds records nothing (domain.safety.SafetySwitch) and
        says since when it holds; its open orders are cancelled again all the same (one the first
        press could not cancel)."""
        switch = await _switch(self.store, scope)
        now = self.clock.now()
        recorded = switch.activate(reason, by, Cause(now, f"emergency-stop-{scope}"), automatic=automatic)
        await repository.save(self.store, switch)
        await self.book.catch_up(self.store)
        result = await self.cancel_open_orders(scope)
        result.reason = switch.reason
        if not recorded:
            result.already_active_since = switch.active_since
        return result

    async def cancel_open_orders(self, scope: str) -> EmergencyStopResult:
        """Cancel the open orders on the accounts the scope trades on (also run by the worker
        when it sees a stop that was recorded elsewhere, e.g. through the API, which holds no
        exchange session). An account that cannot be read is reported and the others still
        cancelled."""
        result = EmergencyStopResult(scope)
        for label, exchange in await self._accounts_of(scope, result):
            try:
                orders = await exchange.open_orders()
            except ExchangeError as exc:
                result.cancel_failures.append(f"open orders of {label}: {exc}")
                continue
            for order in orders:
                try:
                    await exchange.cancel_order(order.symbol, order.client_order_id)
                    result.cancelled_orders.append(order.client_order_id.value)
                except ExchangeError as exc:
                    result.cancel_failures.append(f"{order.client_order_id}: {exc}")
        return result

    async def _accounts_of(self, scope: str, result: EmergencyStopResult) -> list[tuple[str, ExchangeTrading]]:
        """Each account once (several users may share one, e.g. the operator's)."""
        found: dict[int, tuple[str, ExchangeTrading]] = {}
        if self.accounts is None or scope == GLOBAL_SCOPE:
            found[id(self.exchange)] = ("the operator's account", self.exchange)
        if self.accounts is None:
            return list(found.values())
        if scope == GLOBAL_SCOPE:
            await self.book.catch_up(self.store)
        users = [scope] if scope != GLOBAL_SCOPE else self._traders()
        for user_id in users:
            for live in (True, False):
                try:
                    exchange = await self.accounts.trading_for(user_id, live)
                except AccountUnavailable:
                    continue  # no account of this kind for the user: no order of theirs there
                except ApplicationError as exc:
                    result.cancel_failures.append(f"{'live' if live else 'paper'} account of {user_id}: {exc}")
                    continue
                found.setdefault(id(exchange), (f"{'live' if live else 'paper'} account of {user_id}", exchange))
        return list(found.values())

    def _traders(self) -> list[str]:
        """Everyone with a snipe target or a position in the trade book: whoever may have orders."""
        users = {t.user_id for t in self.book.targets.values()} | {p.user_id for p in self.book.positions.values()}
        return sorted(u for u in users if u)


class ClearEmergencyStop:
    def __init__(self, store: EventStore, clock: Clock, book: TradeBook) -> None:
        self.store, self.clock, self.book = store, clock, book

    async def __call__(self, scope: str, by: str) -> bool:
        """True when an active stop was cleared; False (nothing recorded) when there was none."""
        switch = await _switch(self.store, scope)
        cleared = switch.clear(by, Cause(self.clock.now(), f"emergency-stop-{scope}"))
        await repository.save(self.store, switch)
        await self.book.catch_up(self.store)
        return cleared


@dataclass(frozen=True, slots=True)
class StopState:
    """An active emergency stop that holds for a user: theirs, or the global one."""

    scope: str  # "global" or the user id
    reason: str
    by: str  # who pressed it, or the safety monitor
    since: datetime | None
    automatic: bool  # tripped by a rule: protective exits still sell; a person's holds everything

    def describe(self) -> str:
        """One line: "emergency stop pressed by X at T: reason" (a rule's: "tripped by")."""
        kind = "global emergency stop" if self.scope == GLOBAL_SCOPE else "emergency stop"
        verb = "tripped" if self.automatic else "pressed"
        when = f" at {self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if self.since is not None else ""
        return f"{kind} {verb} by {self.by}{when}: {self.reason}"


async def active_stops(store: EventStore, user_id: str) -> list[StopState]:
    """The emergency stops holding for `user_id` now, from the switches themselves (who pressed
    them and since when; the read models keep only the reason): the global one first."""
    found = []
    for scope in (GLOBAL_SCOPE, user_id):
        switch = await repository.find(store, SafetySwitch, safety_stream(scope))
        if switch is not None and switch.active:
            found.append(StopState(scope, switch.reason or "", switch.activated_by or "", switch.active_since,
                                   switch.automatic))
    return found
