"""Telemetry port: spans and metrics without tying the core to a telemetry library.

Use cases and agents open spans and record measurements through this port; the adapter
(adapters/telemetry) maps them onto OpenTelemetry. NO_TELEMETRY does nothing and is the
default, so a use case built without telemetry behaves exactly the same.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

Attribute = str | int | float | bool


class Telemetry(Protocol):
    def span(self, name: str, **attributes: Attribute) -> AbstractContextManager[None]:
        """A unit of work; spans opened inside it (also in awaited code) become its children."""
        ...

    def count(self, name: str, amount: int = 1, **attributes: Attribute) -> None:
        """Add to a counter (orders placed, fills, exchange errors, ...)."""
        ...

    def observe(self, name: str, value: float, **attributes: Attribute) -> None:
        """Record one measurement in a histogram (snipe latency in ms, rate-limit wait in ms, ...)."""
        ...

    def gauge(self, name: str, value: float, **attributes: Attribute) -> None:
        """Set the current value of a gauge (agent health: 1 healthy, 0 not; open positions; ...)."""
        ...

    def annotate(self, **attributes: Attribute) -> None:
        """Add attributes to the innermost open span (what was learnt inside it: a symbol, an outcome)."""
        ...


# The metric names the core records (Prometheus style; the adapter exports them as given).
ORDERS = "sniper_orders_total"  # {side, mode}: orders the exchange accepted
FILLS = "sniper_fills_total"  # {side}: orders that executed
SNIPE_LATENCY_MS = "sniper_snipe_latency_ms"  # launch instant -> the exchange accepted the snipe order
AGENT_HEALTHY = "sniper_agent_healthy"  # {agent}: 1 healthy, 0 not
RATE_LIMIT_WAIT_MS = "sniper_rate_limit_wait_ms"  # {group}: time held back by the local rate budget
EXCHANGE_ERRORS = "sniper_exchange_errors_total"  # {kind}: exchange calls that raised, by error kind
ALERTS_FAILED = "sniper_alerts_failed_total"  # {channel}: alerts a channel could not deliver


class NoTelemetry:
    def span(self, name: str, **attributes: Attribute) -> AbstractContextManager[None]:
        return nullcontext()

    def count(self, name: str, amount: int = 1, **attributes: Attribute) -> None:
        return None

    def observe(self, name: str, value: float, **attributes: Attribute) -> None:
        return None

    def gauge(self, name: str, value: float, **attributes: Attribute) -> None:
        return None

    def annotate(self, **attributes: Attribute) -> None:
        return None


NO_TELEMETRY: Telemetry = NoTelemetry()
