"""SafetySwitch: the emergency stop, per user or global."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from domain.aggregate import Aggregate
from domain.errors import InvalidValue
from domain.events import Cause, DomainEvent, EmergencyStopActivated, EmergencyStopCleared, Recorded

GLOBAL_SCOPE = "global"
# Who the safety monitor records its trips as (application/use_cases/monitor.py).
SAFETY_MONITOR = "safety-monitor"


def safety_stream(scope: str) -> str:
    return f"safety-{scope}"


class Halt(Enum):
    """What an active emergency stop still lets through, for one user.

    A person's stop holds everything (snipes and every exit) until a person clears it. A stop
    tripped automatically by the safety monitor fires when a loss is running (daily loss limit,
    price collapse) or the exchange misbehaves: then new buys and take-profits are held, but the
    exits that cap a loss (stop-loss, trailing stop) keep selling, or the stop would switch off
    the very protection it was tripped for.
    """

    NONE = "none"
    PROTECTIVE_EXITS_ONLY = "protective exits only"
    EVERYTHING = "everything"


class SafetySwitch(Aggregate):
    """A fresh switch (no events) is not active; `for_scope` makes one to record on.

    `automatic`: the active stop was tripped by a rule (the safety monitor), not by a person.
    A person may take over an active automatic stop (activate it again) to hold everything.
    `active_since`: when the active stop was first activated (a takeover keeps it).

    Pressing is idempotent: activating a stop that already holds at least as much, or clearing
    one that is not active, records nothing and says so (False), as a button pressed twice.
    """

    kind = "emergency stop"
    # 2: `automatic` is inferred for stops the monitor recorded before the field existed.
    snapshot_version = 2

    def _blank(self) -> None:
        self.scope = ""
        self.active = False
        self.reason: str | None = None
        self.activated_by: str | None = None
        self.automatic = False
        self.active_since: datetime | None = None

    @classmethod
    def for_scope(cls, scope: str) -> SafetySwitch:
        if not scope:
            raise InvalidValue("an emergency stop needs a scope: a user id or 'global'")
        switch = cls(safety_stream(scope), scope)
        switch._blank()
        switch.scope = scope
        return switch

    def activate(self, reason: str, by: str, cause: Cause, *, automatic: bool = False) -> bool:
        """`automatic`: tripped by a rule (the safety monitor), not by a person. False, with nothing
        recorded, when the active stop holds as much already: a person's stop pressed again, or a
        rule tripping a stop that is active (a person's takes over a rule's, never the reverse)."""
        if not reason.strip():
            raise InvalidValue("an emergency stop needs a reason")
        if self.active and (automatic or not self.automatic):
            return False
        self._record(EmergencyStopActivated(self.scope, reason.strip(), by, automatic), cause)
        return True

    @property
    def halt(self) -> Halt:
        if not self.active:
            return Halt.NONE
        return Halt.PROTECTIVE_EXITS_ONLY if self.automatic else Halt.EVERYTHING

    def clear(self, by: str, cause: Cause) -> bool:
        """False, with nothing recorded, when there is no active stop to clear."""
        if not self.active:
            return False
        self._record(EmergencyStopCleared(self.scope, by), cause)
        return True

    # `active_since` is the time of an event, which `_apply` does not see: stamped around it.
    def _fold(self, history: Iterable[Recorded]) -> None:
        for rec in history:
            self._stamp(rec.event, rec.occurred_at)
            super()._fold((rec,))

    def _record(self, event: DomainEvent, cause: Cause) -> None:
        self._stamp(event, cause.at)
        super()._record(event, cause)

    def _stamp(self, event: DomainEvent, at: datetime) -> None:
        if isinstance(event, EmergencyStopActivated) and not self.active:
            self.active_since = at

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case EmergencyStopActivated():
                self.scope = event.scope
                self.active = True
                self.reason = event.reason
                self.activated_by = event.activated_by
                self.automatic = _tripped_automatically(event)
            case EmergencyStopCleared():
                self.scope = event.scope
                self.active = False
                self.reason = None
                self.activated_by = None
                self.automatic = False
                self.active_since = None
            case _:
                raise TypeError(f"emergency stop cannot apply {type(event).__name__}")


def _tripped_automatically(event: EmergencyStopActivated) -> bool:
    """Stops the safety monitor recorded before `automatic` existed read back as automatic=False:
    they are the monitor's all the same (it never records a person's stop), so they are known by
    who activated them. A person's stop says automatic=False under a person's name."""
    return event.automatic or event.activated_by == SAFETY_MONITOR


def strictest_halt(switches: Iterable[SafetySwitch]) -> Halt:
    """The halt of a user under several stops (theirs and the global one): the strictest wins."""
    halts = {switch.halt for switch in switches}
    for halt in (Halt.EVERYTHING, Halt.PROTECTIVE_EXITS_ONLY):
        if halt in halts:
            return halt
    return Halt.NONE


# --- what trips the stop -------------------------------------------------------------------

def daily_loss_breached(realised_today: Decimal, unrealised: Decimal, max_daily_loss: Decimal) -> bool:
    """Today's loss (realised + what open positions would lose now) reached the user's limit.
    A limit of zero means no loss at all is tolerated once any is made."""
    loss = -(realised_today + min(unrealised, Decimal(0)))
    return loss > 0 and loss >= max_daily_loss


def price_collapsed(entry_price: Decimal, price: Decimal, collapse_percent: Decimal) -> bool:
    """The price fell `collapse_percent` or more below the entry (e.g. 50: half the value gone)."""
    if entry_price <= 0 or not (Decimal(0) < collapse_percent <= Decimal(100)):
        raise InvalidValue(f"a price collapse needs a positive entry and a percent in (0, 100], got "
                           f"{entry_price} and {collapse_percent}")
    return price <= entry_price * (Decimal(100) - collapse_percent) / Decimal(100)


def distinct_errors(sightings: Iterable[tuple[datetime, str]]) -> list[datetime]:
    """The times of the exchange errors to count, from (when, what it befell) in time order: one
    per snipe or position, its first. A refused snipe records its rejection and its failure, and a
    position's exit refused again and again records each refusal: either is one problem, and
    counting each record would trip a global stop on a few orders of one kind."""
    seen: set[str] = set()
    times = []
    for at, source in sightings:
        if source not in seen:
            seen.add(source)
            times.append(at)
    return times


def error_burst(error_times: list[datetime], now: datetime, window: timedelta, threshold: int) -> bool:
    """At least `threshold` exchange errors in the last `window`."""
    if threshold < 1 or window <= timedelta(0):
        raise InvalidValue(f"an error burst needs a threshold >= 1 and a positive window, got {threshold}, {window}")
    return sum(1 for t in error_times if now - window <= t <= now) >= threshold
