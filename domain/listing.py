"""Listings announced by the exchange, and how ready one looks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from domain.aggregate import Aggregate
from domain.errors import InvalidTransition, InvalidValue
from domain.events import Cause, DomainEvent, ListingAnnounced, ListingReadyDetected
from domain.specifications import READY_STATE_PATTERN, LaunchTiming, within_advance_window
from domain.values import Symbol, SymbolState

SYSTEM_USER = "system"
DEFAULT_LEAD_WINDOW = timedelta(hours=3, minutes=30)
# Before any symbol state is seen, an announcement alone says little.
ANNOUNCED_CONFIDENCE = Decimal("0.20")


@dataclass(frozen=True, slots=True)
class ListingAssessment:
    """The classification of a listing at one moment."""

    pattern: str
    ready: bool
    in_window: bool
    lead: timedelta
    confidence: Decimal


def assess(
    state: SymbolState, launch_at: datetime, now: datetime, lead_window: timedelta = DEFAULT_LEAD_WINDOW,
) -> ListingAssessment:
    lead = launch_at - now
    ready = READY_STATE_PATTERN.is_satisfied_by(state)
    in_window = within_advance_window(lead_window).is_satisfied_by(LaunchTiming(launch_at, now))
    if ready:
        pattern = "ready"
        # Seen ready well ahead of the launch: the likeliest to open on time.
        confidence = Decimal("0.95") if lead >= timedelta(minutes=5) else Decimal("0.85")
    elif (state.sts, state.st) == (2, 2):
        pattern, confidence = "preparing", Decimal("0.60")
    elif (state.sts, state.st) == (2, 1):
        pattern, confidence = "approved", Decimal("0.40")
    else:
        pattern, confidence = "announced", ANNOUNCED_CONFIDENCE
    return ListingAssessment(pattern, ready, in_window, lead, confidence)


def listing_stream(coin_id: str) -> str:
    return f"listing-{coin_id}"


def target_id_for(user_id: str, coin_id: str) -> str:
    """One target per user and listing: the id is derived, so a repeat sync finds it."""
    digest = hashlib.sha256(f"{user_id}\x00{coin_id}".encode()).hexdigest()
    return f"t-{digest[:12]}"


class Listing(Aggregate):
    kind = "listing"

    def _blank(self) -> None:
        self.coin_id = ""
        self.ticker = ""
        self.full_name = ""
        self.symbol: Symbol | None = None
        self.launch_at: datetime | None = None
        self.ready = False

    @classmethod
    def announce(
        cls, coin_id: str, ticker: str, full_name: str, symbol: Symbol, launch_at: datetime, cause: Cause,
    ) -> Listing:
        if not coin_id:
            raise InvalidValue("listing needs a coin id")
        if launch_at.tzinfo is None:
            raise InvalidValue("launch time must carry a time zone")
        listing = cls(listing_stream(coin_id), SYSTEM_USER)
        listing._blank()
        listing._record(ListingAnnounced(coin_id, ticker, full_name, symbol.code, launch_at, symbol.quote), cause)
        return listing

    def detect_ready(self, state: SymbolState, cause: Cause) -> None:
        if self.launch_at is None:
            raise InvalidTransition("listing", "unannounced", "be detected ready")
        if self.ready:
            raise InvalidTransition("listing", "ready", "be detected ready again")
        if not READY_STATE_PATTERN.is_satisfied_by(state):
            raise InvalidValue("; ".join(READY_STATE_PATTERN.unmet(state)))
        lead = int((self.launch_at - cause.at).total_seconds())
        if self.symbol is None:  # not reached: announce() gives every listing its symbol
            raise InvalidTransition(f"listing {self.coin_id}", "announced", "be detected ready without a symbol")
        detected = ListingReadyDetected(
            self.coin_id, self.symbol.code, state.sts, state.st, state.tt, self.launch_at, lead
        )
        self._record(detected, cause)

    def _apply(self, event: DomainEvent) -> None:
        match event:
            case ListingAnnounced():
                self.coin_id = event.coin_id
                self.ticker = event.ticker
                self.full_name = event.full_name
                self.symbol = Symbol.parse(event.symbol, event.quote_asset)
                self.launch_at = event.launch_at
            case ListingReadyDetected():
                self.ready = True
            case _:
                raise TypeError(f"listing cannot apply {type(event).__name__}")

