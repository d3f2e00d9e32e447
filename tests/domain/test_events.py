"""The stored event types."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from decimal import Decimal

import pytest

import domain.events as events
from domain.events import EVENT_TYPES, Cause, DomainEvent, ExitFilled, Recorded, SnipeFailed, TakeProfitHit
from tests.domain.support import T0

# The stored names: renaming or dropping one is a migration, so they are pinned here.
STORED = {
    "ListingAnnounced", "ListingReadyDetected", "ListingAnalysed",
    "SnipeTargetCreated", "SnipeTargetReady", "SnipeScheduled", "SnipeOrderSubmitted", "SnipeOrderFilled",
    "SnipeOrderRejected", "SnipeFailed", "SnipeExpired", "SnipeTargetCancelled", "RiskCheckFailed",
    "PositionOpened", "EntryFeeLearnt", "ExitOrderSubmitted", "ExitOrderFailed", "PositionPeakRaised",
    "TakeProfitHit", "StopLossHit", "TrailingStopHit", "MaxHoldTimeReached", "EmergencyExitFilled", "ManualExitFilled",
    "DustWrittenOff", "PositionClosed", "EmergencyStopActivated", "EmergencyStopCleared",
    "CredentialsStored", "CredentialsRotated", "CredentialsDeleted",
    "SnipeTargetAmended", "TraderSettingsChanged", "ExitStrategySaved", "ExitStrategyDeleted",
    "TelegramLinkCodeIssued", "TelegramChatLinked", "TelegramChatUnlinked", "NotificationSettingsChanged",
}

# The events DESIGN.md names.
DESIGN_EVENTS = {
    "ListingAnnounced", "ListingReadyDetected", "SnipeTargetCreated", "SnipeScheduled", "SnipeOrderSubmitted",
    "SnipeOrderFilled", "SnipeOrderRejected", "SnipeFailed", "SnipeExpired", "PositionOpened", "ExitOrderSubmitted",
    "TakeProfitHit", "StopLossHit", "TrailingStopHit", "PositionClosed", "RiskCheckFailed", "EmergencyStopActivated",
    "EmergencyStopCleared", "CredentialsStored", "CredentialsRotated",
}


class TestEventTypes:
    def test_exactly_the_stored_names(self) -> None:
        assert set(EVENT_TYPES) == STORED

    def test_every_design_event_is_stored(self) -> None:
        assert set(EVENT_TYPES) >= DESIGN_EVENTS

    def test_bases_and_envelopes_are_not_event_types(self) -> None:
        for name in ("DomainEvent", "ExitFilled", "Cause", "Recorded"):
            assert name not in EVENT_TYPES
        assert DomainEvent not in EVENT_TYPES.values()
        assert ExitFilled not in EVENT_TYPES.values()

    @pytest.mark.parametrize("name", sorted(STORED))
    def test_each_name_maps_to_its_own_class(self, name: str) -> None:
        cls = EVENT_TYPES[name]
        assert cls.__name__ == name
        assert cls is getattr(events, name)  # the class in use, not a discarded pre-slots original
        assert issubclass(cls, DomainEvent)
        assert dataclasses.is_dataclass(cls)

    def test_exit_fills_are_exit_filled(self) -> None:
        for name in ("TakeProfitHit", "StopLossHit", "TrailingStopHit", "MaxHoldTimeReached", "EmergencyExitFilled",
                     "ManualExitFilled", "DustWrittenOff"):
            assert issubclass(EVENT_TYPES[name], ExitFilled)

    def test_type_name_is_the_class_name(self) -> None:
        assert SnipeFailed("t-1", "x").type_name == "SnipeFailed"
        fill = TakeProfitHit("p-1", "ext1", 0, Decimal(1), Decimal(1), Decimal(1), Decimal(0), Decimal(1), Decimal(0))
        assert fill.type_name == "TakeProfitHit"

    def test_events_are_immutable(self) -> None:
        event = SnipeFailed("t-1", "x")
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.reason = "y"  # type: ignore[misc]


class TestEnvelope:
    def test_cause_and_recorded_hold_what_they_are_given(self) -> None:
        c = Cause(at=T0, correlation_id="c-1")
        assert c.at.tzinfo is UTC
        rec = Recorded("s", 1, c.at, "u", c.correlation_id, SnipeFailed("t", "r"))
        assert rec.position is None
        assert dataclasses.replace(rec, position=7).position == 7
