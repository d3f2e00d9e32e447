"""Timing of the snipe flow. Defaults follow DESIGN.md; the entrypoint may override them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class SnipeTiming:
    # A listing launching within this window is prepared for; beyond it, only watched.
    lead_window: timedelta = timedelta(hours=3, minutes=30)
    # The executor starts this long before launch: clock sync, warm connection, checks.
    prepare_ahead: timedelta = timedelta(seconds=2)
    # After launch, "not yet open" is retried until this much time has passed.
    snipe_window: timedelta = timedelta(seconds=30)
    # Pause between "not yet open" retries; MEXC allows 500 calls per 10 s per endpoint.
    retry_interval: timedelta = timedelta(milliseconds=20)
    # A target still not ready this long after its launch time expires.
    expiry_grace: timedelta = timedelta(minutes=5)
    # How long one executor may hold a snipe before another may take over.
    lease_ttl: timedelta = timedelta(minutes=2)
