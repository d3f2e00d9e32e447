"""SafetySwitch: the emergency stop, per user or global."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import InvalidValue
from domain.events import EmergencyStopActivated, EmergencyStopCleared
from domain.safety import (
    GLOBAL_SCOPE,
    Halt,
    SafetySwitch,
    distinct_errors,
    error_burst,
    safety_stream,
    strictest_halt,
)
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

    def test_activate_twice_records_nothing_and_keeps_since_when(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        assert switch.activate("error burst", "ops", cause(1)) is True
        assert switch.activate("again", "someone", cause(2)) is False
        assert switch.version == 1 and len(switch.pending) == 1
        assert (switch.reason, switch.activated_by, switch.active_since) == ("error burst", "ops", cause(1).at)

    def test_active_since_survives_a_rehydrate_and_a_takeover_and_is_gone_once_cleared(self) -> None:
        switch = SafetySwitch.for_scope("user-1")
        switch.activate("loss", "safety-monitor", cause(1), automatic=True)
        switch.activate("I hold everything", "alice", cause(2))
        assert switch.active_since == cause(1).at  # the stop has held since the first press
        assert SafetySwitch.rehydrate(switch.stream_id, switch.pending).active_since == cause(1).at
        switch.clear("alice", cause(3))
        switch.activate("again", "alice", cause(4))
        assert switch.active_since == cause(4).at
        assert SafetySwitch.rehydrate(switch.stream_id, switch.pending).active_since == cause(4).at

    @pytest.mark.parametrize("reason", ["", "   ", "\t\n"])
    def test_blank_reason_refused(self, reason: str) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        with pytest.raises(InvalidValue, match="reason"):
            switch.activate(reason, "someone", cause(1))
        assert switch.active is False and switch.version == 0

    def test_clear_when_not_active_records_nothing(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        assert switch.clear("ops", cause(1)) is False
        assert switch.version == 0 and switch.pending == []

    def test_clear_after_activate(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        switch.activate("manual halt", "ops", cause(1))
        switch.clear("ops-lead", cause(2))
        assert switch.active is False
        assert switch.reason is None and switch.activated_by is None
        assert switch.pending[-1].event == EmergencyStopCleared("global", "ops-lead")
        assert switch.clear("ops-lead", cause(3)) is False
        assert switch.version == 2 and switch.active_since is None

    def test_can_be_activated_again_after_clearing(self) -> None:
        switch = SafetySwitch.for_scope(GLOBAL_SCOPE)
        switch.activate("one", "ops", cause(1))
        switch.clear("ops", cause(2))
        switch.activate("two", "ops", cause(3))
        assert type_names(switch.pending) == [
            "EmergencyStopActivated", "EmergencyStopCleared", "EmergencyStopActivated"
        ]
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


class TestWhoActivatedIt:
    """A person's stop holds everything; the safety monitor's (automatic) keeps protective exits."""

    def test_a_person_s_stop_holds_everything(self) -> None:
        switch = SafetySwitch.for_scope("user-1")
        switch.activate("hold", "alice", cause(1))
        assert switch.automatic is False and switch.halt is Halt.EVERYTHING
        assert switch.pending[-1].event == EmergencyStopActivated("user-1", "hold", "alice", False)

    def test_an_automatic_stop_lets_protective_exits_through(self) -> None:
        switch = SafetySwitch.for_scope("user-1")
        switch.activate("daily loss limit reached", "safety-monitor", cause(1), automatic=True)
        assert switch.automatic is True and switch.halt is Halt.PROTECTIVE_EXITS_ONLY
        assert switch.pending[-1].event.automatic is True
        again = SafetySwitch.rehydrate(switch.stream_id, switch.pending)
        assert (again.automatic, again.halt) == (True, Halt.PROTECTIVE_EXITS_ONLY)

    def test_not_active_halts_nothing_and_clearing_forgets_who(self) -> None:
        switch = SafetySwitch.for_scope("user-1")
        assert switch.halt is Halt.NONE
        switch.activate("loss", "safety-monitor", cause(1), automatic=True)
        switch.clear("alice", cause(2))
        assert (switch.automatic, switch.halt) == (False, Halt.NONE)

    def test_a_person_may_take_over_an_automatic_stop_to_hold_everything(self) -> None:
        switch = SafetySwitch.for_scope("user-1")
        switch.activate("loss", "safety-monitor", cause(1), automatic=True)
        switch.activate("I hold everything", "alice", cause(2))
        assert (switch.halt, switch.activated_by, switch.reason) == (Halt.EVERYTHING, "alice", "I hold everything")
        assert switch.version == 2

    @pytest.mark.parametrize(("first_automatic", "second_automatic"), [(False, False), (False, True), (True, True)])
    def test_otherwise_activating_an_active_stop_again_changes_nothing(
        self, first_automatic: bool, second_automatic: bool
    ) -> None:
        switch = SafetySwitch.for_scope("user-1")
        switch.activate("one", "x", cause(1), automatic=first_automatic)
        assert switch.activate("two", "y", cause(2), automatic=second_automatic) is False
        assert (switch.version, switch.reason, switch.automatic) == (1, "one", first_automatic)

    def test_the_strictest_of_a_user_s_stops_wins(self) -> None:
        person, monitor, idle = (SafetySwitch.for_scope(s) for s in ("user-1", GLOBAL_SCOPE, "user-2"))
        person.activate("hold", "alice", cause(1))
        monitor.activate("burst", "safety-monitor", cause(1), automatic=True)
        assert strictest_halt([]) is Halt.NONE
        assert strictest_halt([idle]) is Halt.NONE
        assert strictest_halt([monitor, idle]) is Halt.PROTECTIVE_EXITS_ONLY
        assert strictest_halt([monitor, person]) is Halt.EVERYTHING


class TestStopsRecordedBeforeAutomaticExisted:
    """EmergencyStopActivated had no `automatic` before the exit-path fix: the monitor's stops of
    then read back as automatic=False. They are the monitor's all the same and fold as automatic,
    or they would hold stop-losses until a person clears them."""

    @staticmethod
    def _stored(payload: bytes) -> SafetySwitch:
        from adapters.eventstore.codec import decode_event
        from domain.events import Recorded

        event = decode_event("EmergencyStopActivated", payload)
        rec = Recorded("safety-user-1", 1, cause(1).at, "user-1", "c", event)
        return SafetySwitch.rehydrate("safety-user-1", [rec])

    def test_an_old_monitor_stop_folds_as_automatic(self) -> None:
        switch = self._stored(b'{"scope":"user-1","reason":"daily loss limit reached","activated_by":"safety-monitor"}')
        assert (switch.automatic, switch.halt) == (True, Halt.PROTECTIVE_EXITS_ONLY)

    def test_an_old_person_s_stop_still_holds_everything(self) -> None:
        switch = self._stored(b'{"scope":"user-1","reason":"hold","activated_by":"alice"}')
        assert (switch.automatic, switch.halt) == (False, Halt.EVERYTHING)

    def test_a_person_s_stop_saying_automatic_false_stays_a_person_s(self) -> None:
        switch = self._stored(b'{"scope":"user-1","reason":"hold","activated_by":"ops","automatic":false}')
        assert (switch.automatic, switch.halt) == (False, Halt.EVERYTHING)

    def test_a_person_may_take_over_an_old_monitor_stop(self) -> None:
        switch = self._stored(b'{"scope":"user-1","reason":"loss","activated_by":"safety-monitor"}')
        switch.activate("mine now", "alice", cause(2))
        assert (switch.automatic, switch.halt) == (False, Halt.EVERYTHING)

    def test_snapshots_folded_before_the_inference_are_not_used(self) -> None:
        assert SafetySwitch.snapshot_shape().startswith("SafetySwitch/2:")


class TestErrorsCountOncePerSnipeOrPosition:
    def test_a_refused_snipe_counts_once(self) -> None:
        # Each rejected snipe records SnipeOrderRejected and SnipeFailed on its stream.
        sightings = [(cause(i).at, f"target-t{i // 2}") for i in range(6)]
        assert distinct_errors(sightings) == [cause(0).at, cause(2).at, cause(4).at]
        assert not error_burst(distinct_errors(sightings), cause(6).at, timedelta(minutes=1), 5)

    def test_different_snipes_and_positions_each_count(self) -> None:
        sightings = [(cause(i).at, f"target-t{i}") for i in range(3)] + [(cause(3).at, "position-p"),
                                                                        (cause(4).at, "position-p"),
                                                                        (cause(5).at, "position-q")]
        assert len(distinct_errors(sightings)) == 5
        assert error_burst(distinct_errors(sightings), cause(6).at, timedelta(minutes=1), 5)
