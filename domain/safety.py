"""SafetySwitch: the emergency stop, per user or global."""

from __future__ import annotations

from domain.aggregate import Aggregate
from domain.errors import InvalidTransition, InvalidValue
from domain.events import Cause, DomainEvent, EmergencyStopActivated, EmergencyStopCleared

GLOBAL_SCOPE = "global"


def safety_stream(scope: str) -> str:
    return f"safety-{scope}"


class SafetySwitch(Aggregate):
    """A fresh switch (no events) is not active; `for_scope` makes one to record on."""

    kind = "emergency stop"

    def _blank(self) -> None:
        self.scope = ""
        self.active = False
        self.reason: str | None = None
        self.activated_by: str | None = None

    @classmethod
    def for_scope(cls, scope: str) -> "SafetySwitch":
        if not scope:
            raise InvalidValue("an emergency stop needs a scope: a user id or 'global'")
        switch = cls(safety_stream(scope), scope)
        switch._blank()
        switch.scope = scope
        return switch

    def activate(self, reason: str, by: str, cause: Cause) -> None:
        if self.active:
            raise InvalidTransition(f"emergency stop ({self.scope})", "active", "be activated")
        if not reason.strip():
            raise InvalidValue("an emergency stop needs a reason")
        self._record(EmergencyStopActivated(self.scope, reason.strip(), by), cause)

    def clear(self, by: str, cause: Cause) -> None:
        if not self.active:
            raise InvalidTransition(f"emergency stop ({self.scope})", "not active", "be cleared")
        self._record(EmergencyStopCleared(self.scope, by), cause)

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case EmergencyStopActivated():
                self.scope = event.scope
                self.active = True
                self.reason = event.reason
                self.activated_by = event.activated_by
            case EmergencyStopCleared():
                self.scope = event.scope
                self.active = False
                self.reason = None
                self.activated_by = None
            case _:
                raise TypeError(f"emergency stop cannot apply {type(event).__name__}")
