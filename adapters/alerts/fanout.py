"""FanoutNotifier: one alert to every configured channel, at once, without ever raising.

Repeats of one condition (the same Alert.key) inside `window` are held back, so an error
burst makes one message, not hundreds; the next one after the window says how many were
held back. A more severe alert for the same key goes out at once (a warning turning
critical must not wait). Each channel has `timeout` seconds; a channel that fails or hangs
is logged and counted (sniper_alerts_failed_total{channel}), and the others still deliver.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from application.alerts import Alert, Severity
from application.ports import Clock
from application.telemetry import ALERTS_FAILED, NO_TELEMETRY, Telemetry

log = logging.getLogger(__name__)

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_MAX_KEYS = 10_000


class AlertChannel(Protocol):
    name: str

    async def deliver(self, alert: Alert) -> None:
        """Deliver or raise."""
        ...


@dataclass(slots=True)
class _Sent:
    at: datetime
    severity: Severity
    held_back: int = 0


class FanoutNotifier:
    def __init__(
        self,
        channels: Sequence[AlertChannel],
        clock: Clock,
        *,
        window: timedelta = timedelta(minutes=5),
        timeout: float = 5.0,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self.channels = tuple(channels)
        self.clock = clock
        self.window = window
        self.timeout = timeout
        self.telemetry = telemetry
        self._sent: dict[str, _Sent] = {}

    async def send(self, alert: Alert) -> None:
        outgoing = self._admit(alert)
        if outgoing is None or not self.channels:
            return
        await asyncio.gather(*(self._deliver(channel, outgoing) for channel in self.channels))

    def _admit(self, alert: Alert) -> Alert | None:
        """The alert to send now (with the held-back count), or None to hold it back."""
        now = self.clock.now()
        last = self._sent.get(alert.key)
        if last is not None and now - last.at < self.window and _RANK[alert.severity] <= _RANK[last.severity]:
            last.held_back += 1
            return None
        held_back = last.held_back if last is not None else 0
        self._sent[alert.key] = _Sent(now, alert.severity)
        if len(self._sent) > _MAX_KEYS:
            self._forget_before(now - self.window)
        if held_back:
            return dataclasses.replace(alert, text=f"{alert.text}\n({held_back} similar alerts held back)")
        return alert

    def _forget_before(self, moment: datetime) -> None:
        for key in [k for k, sent in self._sent.items() if sent.at < moment]:
            del self._sent[key]

    async def _deliver(self, channel: AlertChannel, alert: Alert) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await channel.deliver(alert)
        except TimeoutError:
            self._failed(channel, alert, f"no answer within {self.timeout:g} s")
        except Exception as exc:  # an alert must never break trading
            self._failed(channel, alert, str(exc) or type(exc).__name__)

    def _failed(self, channel: AlertChannel, alert: Alert, why: str) -> None:
        log.warning("alert %s not delivered to %s: %s", alert.key, channel.name, why)
        self.telemetry.count(ALERTS_FAILED, channel=channel.name)
