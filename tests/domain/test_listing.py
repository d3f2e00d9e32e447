"""Listings: how ready one looks, and the Listing aggregate."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import InvalidTransition, InvalidValue
from domain.events import ListingAnnounced, ListingReadyDetected, Recorded, SnipeFailed
from domain.listing import (
    DEFAULT_LEAD_WINDOW,
    SYSTEM_USER,
    Listing,
    assess,
    listing_stream,
    target_id_for,
)
from domain.values import Symbol, SymbolState
from tests.domain.support import T0, cause, state_of, type_names

READY = SymbolState(2, 2, 4)
LAUNCH = T0 + timedelta(hours=2)


class TestAssess:
    def test_default_lead_window_is_three_and_a_half_hours(self) -> None:
        assert timedelta(hours=3, minutes=30) == DEFAULT_LEAD_WINDOW

    def test_ready_well_ahead_and_in_window(self) -> None:
        a = assess(READY, LAUNCH, T0)
        assert (a.pattern, a.ready, a.in_window) == ("ready", True, True)
        assert a.lead == timedelta(hours=2)
        assert a.confidence == Decimal("0.95")

    def test_ready_exactly_five_minutes_ahead_is_still_the_high_confidence(self) -> None:
        assert assess(READY, T0 + timedelta(minutes=5), T0).confidence == Decimal("0.95")

    def test_ready_close_to_launch_is_less_confident(self) -> None:
        a = assess(READY, T0 + timedelta(minutes=5) - timedelta(seconds=1), T0)
        assert a.pattern == "ready" and a.in_window
        assert a.confidence == Decimal("0.85")

    def test_ready_but_beyond_the_window(self) -> None:
        a = assess(READY, T0 + timedelta(hours=3, minutes=30, seconds=1), T0)
        assert a.ready and a.pattern == "ready"
        assert not a.in_window

    def test_ready_after_launch_is_not_in_window(self) -> None:
        a = assess(READY, T0 - timedelta(minutes=1), T0)
        assert a.ready and not a.in_window
        assert a.lead == -timedelta(minutes=1)
        assert a.confidence == Decimal("0.85")

    def test_window_edge_is_inside(self) -> None:
        assert assess(READY, T0 + DEFAULT_LEAD_WINDOW, T0).in_window

    def test_custom_lead_window(self) -> None:
        assert not assess(READY, LAUNCH, T0, lead_window=timedelta(hours=1)).in_window
        assert assess(READY, LAUNCH, T0, lead_window=timedelta(hours=2)).in_window

    @pytest.mark.parametrize(
        ("state", "pattern", "confidence"),
        [
            (SymbolState(2, 2, 3), "preparing", "0.60"),
            (SymbolState(2, 2, 0), "preparing", "0.60"),
            (SymbolState(2, 1, 4), "approved", "0.40"),
            (SymbolState(2, 1, 0), "approved", "0.40"),
            (SymbolState(1, 1, 1), "announced", "0.20"),
            (SymbolState(1, 2, 4), "announced", "0.20"),
            (SymbolState(0, 0, 0), "announced", "0.20"),
        ],
    )
    def test_not_ready_patterns(self, state: SymbolState, pattern: str, confidence: str) -> None:
        a = assess(state, LAUNCH, T0)
        assert a.pattern == pattern
        assert a.ready is False
        assert a.confidence == Decimal(confidence)
        assert a.in_window  # the window depends on time alone

    def test_confidence_grows_with_readiness(self) -> None:
        order = [SymbolState(1, 1, 1), SymbolState(2, 1, 1), SymbolState(2, 2, 1), READY]
        confidences = [assess(s, LAUNCH, T0).confidence for s in order]
        assert confidences == sorted(confidences)
        assert len(set(confidences)) == 4


class TestTargetId:
    def test_deterministic(self) -> None:
        assert target_id_for("user-1", "coin-9") == target_id_for("user-1", "coin-9")

    def test_shape(self) -> None:
        assert re.fullmatch(r"t-[0-9a-f]{12}", target_id_for("user-1", "coin-9"))

    def test_distinct_per_user_and_per_coin(self) -> None:
        ids = {target_id_for(u, c) for u in ("alice", "bob", "carol") for c in ("c1", "c2", "c3")}
        assert len(ids) == 9

    def test_concatenation_is_not_ambiguous(self) -> None:
        assert target_id_for("ab", "c") != target_id_for("a", "bc")


NEW_USDT = Symbol("NEW", "USDT")


def announce(coin_id: str = "c-42", launch_at: datetime = LAUNCH, symbol: Symbol = NEW_USDT) -> Listing:
    return Listing.announce(coin_id, symbol.base, "New Coin", symbol, launch_at, cause(0, "calendar-1"))


class TestListingAnnounce:
    def test_records_the_announcement(self) -> None:
        listing = announce()
        assert listing.stream_id == listing_stream("c-42") == "listing-c-42"
        assert listing.user_id == SYSTEM_USER
        assert listing.version == 1
        assert listing.expected_version == 0
        (rec,) = listing.pending
        assert rec == Recorded(
            stream_id="listing-c-42",
            version=1,
            occurred_at=T0,
            user_id=SYSTEM_USER,
            correlation_id="calendar-1",
            event=ListingAnnounced("c-42", "NEW", "New Coin", "NEWUSDT", LAUNCH),
        )

    def test_state_after_announcement(self) -> None:
        listing = announce()
        assert listing.coin_id == "c-42"
        assert listing.ticker == "NEW"
        assert listing.full_name == "New Coin"
        assert listing.symbol == Symbol("NEW", "USDT")
        assert listing.launch_at == LAUNCH
        assert listing.ready is False

    def test_quote_other_than_usdt_survives_the_fold(self) -> None:
        assert announce(symbol=Symbol("NEW", "USDC")).symbol == Symbol("NEW", "USDC")

    def test_needs_a_coin_id(self) -> None:
        with pytest.raises(InvalidValue, match="coin id"):
            announce(coin_id="")

    def test_needs_an_aware_launch_time(self) -> None:
        with pytest.raises(InvalidValue, match="time zone"):
            announce(launch_at=LAUNCH.replace(tzinfo=None))


class TestDetectReady:
    def test_records_ready_with_lead_seconds(self) -> None:
        listing = announce()
        listing.detect_ready(READY, cause(600, "pattern-7"))
        assert listing.ready is True
        assert listing.version == 2
        assert type_names(listing.pending) == ["ListingAnnounced", "ListingReadyDetected"]
        rec = listing.pending[-1]
        assert rec.version == 2
        assert rec.occurred_at == T0 + timedelta(seconds=600)
        assert rec.correlation_id == "pattern-7"
        assert rec.event == ListingReadyDetected("c-42", "NEWUSDT", 2, 2, 4, LAUNCH, 2 * 3600 - 600)

    def test_lead_is_whole_seconds_toward_zero(self) -> None:
        listing = announce()
        listing.detect_ready(READY, cause(0.9))
        assert listing.pending[-1].event.lead_seconds == 7199

    def test_twice_is_an_invalid_transition(self) -> None:
        listing = announce()
        listing.detect_ready(READY, cause(1))
        with pytest.raises(InvalidTransition) as info:
            listing.detect_ready(READY, cause(2))
        assert info.value.current == "ready"
        assert listing.version == 2 and len(listing.pending) == 2

    def test_not_ready_state_is_refused_with_the_reason(self) -> None:
        listing = announce()
        with pytest.raises(InvalidValue, match=r"\(sts=2, st=2, tt=3\)"):
            listing.detect_ready(SymbolState(2, 2, 3), cause(1))
        assert listing.ready is False
        assert listing.version == 1 and len(listing.pending) == 1

    def test_unannounced_listing_cannot_be_detected(self) -> None:
        blank = Listing.rehydrate("listing-x", [])
        assert blank.version == 0
        with pytest.raises(InvalidTransition, match="unannounced"):
            blank.detect_ready(READY, cause(1))


class TestListingRehydrate:
    def test_reproduces_state_and_version(self) -> None:
        listing = announce()
        listing.detect_ready(READY, cause(60))
        again = Listing.rehydrate(listing.stream_id, listing.pending)
        assert state_of(again) == state_of(listing)
        assert again.version == 2
        assert again.pending == []
        assert again.expected_version == 2
        assert again.user_id == SYSTEM_USER

    def test_rehydrated_listing_keeps_its_rules(self) -> None:
        listing = announce()
        listing.detect_ready(READY, cause(60))
        again = Listing.rehydrate(listing.stream_id, listing.pending)
        with pytest.raises(InvalidTransition):
            again.detect_ready(READY, cause(61))

    def test_mark_saved_clears_pending(self) -> None:
        listing = announce()
        listing.mark_saved()
        assert listing.pending == []
        assert listing.expected_version == listing.version == 1
        listing.detect_ready(READY, cause(1))
        assert [r.version for r in listing.pending] == [2]
        assert listing.expected_version == 1

    def test_pending_is_a_copy(self) -> None:
        listing = announce()
        listing.pending.clear()
        assert len(listing.pending) == 1

    def test_gap_in_versions_is_refused(self) -> None:
        listing = announce()
        listing.detect_ready(READY, cause(1))
        second = listing.pending[1]
        with pytest.raises(ValueError, match="skips"):
            Listing.rehydrate(listing.stream_id, [second])

    def test_foreign_event_is_refused(self) -> None:
        rec = Recorded("listing-x", 1, T0, SYSTEM_USER, "c", SnipeFailed("t-1", "nope"))
        with pytest.raises(TypeError, match="SnipeFailed"):
            Listing.rehydrate("listing-x", [rec])


def test_a_listing_quoted_in_another_asset_rebuilds_with_that_quote() -> None:
    from datetime import UTC, datetime

    from domain.events import Cause
    from domain.listing import Listing
    from domain.values import Symbol

    at = datetime(2026, 11, 25, 8, tzinfo=UTC)
    listing = Listing.announce("c-9", "NEWCOIN", "New Coin", Symbol("NEW", "USDC"), at.replace(hour=10), Cause(at, "x"))
    rebuilt = Listing.rehydrate(listing.stream_id, listing.pending)
    assert rebuilt.symbol == Symbol("NEW", "USDC")
