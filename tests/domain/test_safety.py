"""SafetySwitch: the emergency stop, per user or global."""

from __future__ import annotations

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import EmergencyStopActivated, EmergencyStopCleared
from domain.safety import GLOBAL_SCOPE, SafetySwitch, safety_stream
from tests.domain.support import cause, state_of, type_names


class TestSafetySwitch:
    def test_fresh_switch_is_not_active(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        assert switch.active is False
        assert switch.scope == "global"
        assert switch.stream_id == safety_stream("global") == "safety-global"
        assert switch.user_id == "global"
        assert switch.version == 0 and switch.pending == []

    def test_scope_is_required(self) -> None:
        with pytest.raises(InvalidValue, match="scope"):
            SafetySwitch.for_scope("")

    def test_activate_records_the_reason_and_who(self) -> None:
        switch = SafetySwitch.for_scope("user-1")
        switch.activate("  daily loss limit reached ", "safety-monitor", cause(5, "flow-9"))
        assert switch.active is True
        assert switch.reason == "daily loss limit reached"
        assert switch.activated_by == "safety-monitor"
        (rec,) = switch.pending
        assert rec.event == EmergencyStopActivated("user-1", "daily loss limit reached", "safety-monitor")
        assert (rec.stream_id, rec.version, rec.user_id, rec.correlation_id) == ("safety-user-1", 1, "user-1", "flow-9")
        assert rec.occurred_at == cause(5).at

    def test_activate_twice_is_invalid(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        switch.activate("error burst", "safety-monitor", cause(1))
        with pytest.raises(InvalidTransition, match="cannot be activated while active"):
            switch.activate("again", "someone", cause(2))
        assert switch.version == 1
        assert switch.reason == "error burst"

    @pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
    def test_blank_reason_refused(self, reason: str) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        with pytest.raises(InvalidValue, match="reason"):
            switch.activate(reason, "someone", cause(1))
        assert switch.active is False and switch.version == 0

    def test_clear_when_not_active_is_invalid(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        with pytest.raises(InvalidTransition, match="cannot be cleared while not active"):
            switch.clear("ops", cause(1))
        assert switch.version == 0

    def test_clear_after_activate(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        switch.activate("manual halt", "ops", cause(1))
        switch.clear("ops-lead", cause(2))
        assert switch.active is False
        assert switch.reason is None and switch.activated_by is None
        assert switch.pending[-1].event == EmergencyStopCleared("global", "ops-lead")
        with pytest.raises(InvalidTransition):
            switch.clear("ops-lead", cause(3))

    def test_can_be_activated_again_after_clearing(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        switch.activate("one", "ops", cause(1))
        switch.clear("ops", cause(2))
        switch.activate("two", "ops", cause(3))
        assert type_names(switch.pending) == ["EmergencyStopActivated", "EmergencyStopCleared", "EmergencyStopActivated"]
        assert [r.version for r in switch.pending] == [1, 2, 3]
        assert switch.active and switch.reason == "two"

    @pytest.mark.parametrize("steps", [1, 2, 3])
    def test_rehydrate_gives_the_same_state(self, steps: int) -> None:
        switch = SafetySwitch.for_scope("user-7")
        actions = [
            lambda: switch.activate("loss", "monitor", cause(1)),
            lambda: switch.clear("person", cause(2)),
            lambda: switch.activate("burst", "monitor", cause(3)),
        ]
        for act in actions[:steps]:
            act()
        again = SafetySwitch.rehydrate(switch.stream_id, switch.pending)
        assert state_of(again) == state_of(switch)
        assert again.version == steps
        assert again.user_id == "user-7"
        assert again.active is (steps != 2)
