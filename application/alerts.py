"""Alerts to people: the Notifier port and what an alert carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol


class Severity(Enum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Alert:
    """One message for operators or a trader. `key` groups repeats of the same condition
    (e.g. "agent-crashed:calendar") so a notifier can collapse bursts; `user_id` is None for
    operator alerts."""

    key: str
    severity: Severity
    title: str
    text: str
    at: datetime
    user_id: str | None = None


class Notifier(Protocol):
    async def send(self, alert: Alert) -> None:
        """Deliver the alert. Must not raise for delivery failures (an alert must never break
        trading): adapters log and count them instead."""
        ...


class NoNotifier:
    async def send(self, alert: Alert) -> None:
        return None
