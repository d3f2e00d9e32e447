"""What a snipe run returns, and the small helpers its steps share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from application.ports import Clock, OrderReport
from domain.events import Cause
from domain.target import SnipeTarget


def unscheduled(target: SnipeTarget) -> RuntimeError:
    """Not reached: a target has its symbol, times, order id and plan before it is executed."""
    return RuntimeError(f"snipe target {target.target_id} ({target.status.value}) is missing its schedule")


def mode(target: SnipeTarget) -> str:
    return "live" if target.live else "paper"


def cause_of(target: SnipeTarget, clock: Clock, at: datetime | None = None) -> Cause:
    return Cause(at or clock.now(), target.target_id)


class SnipeResult(Enum):
    FILLED = "filled"
    FAILED = "failed"
    REFUSED = "refused"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class SnipeOutcome:
    target_id: str
    result: SnipeResult
    detail: str
    attempts: int = 0
    fill: OrderReport | None = None
    # Sends refused as not open yet (10007): expected in the bracket around the open (SendPlanner.plan).
    not_open: int = 0
    first_send_at: datetime | None = None  # when the first send of this run started (our clock)
    # The fill was recorded with its fee unknown (`fill.fee_asset` "") and the fee learnt right after it
    # (EntryFeeLearnt). A fill recorded without its fee and not learnt here is learnt by the reconciliation.
    fee_late: bool = False
