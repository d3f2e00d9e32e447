"""What one exit did, as the callers of ManagePositions see it."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import OrderReport
from domain.position import ExitDecision, Position


@dataclass(frozen=True, slots=True)
class ExitOutcome:
    position_id: str
    reason: str
    quantity: str
    price: str
    filled: bool
    detail: str = ""


def outcome(
    position: Position, decision: ExitDecision, filled: bool, detail: str, report: OrderReport | None = None
) -> ExitOutcome:
    price = report.average_price if report is not None else decision.trigger_price
    qty = report.executed_quantity if report is not None else decision.quantity
    return ExitOutcome(position.position_id, decision.reason.value, format(qty, "f"), format(price, "f"), filled,
                       detail)


def unopened(position: Position) -> RuntimeError:
    """Not reached: a position has its symbol (and, while exiting, its pending exit) once opened."""
    return RuntimeError(f"position {position.position_id} ({position.status.value}) is missing what opening sets")
