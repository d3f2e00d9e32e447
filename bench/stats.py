"""Summary figures and the printed table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p90: float
    p99: float
    min: float
    max: float


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of sorted data: an observed value, never interpolated."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    if n == 0:
        return math.nan
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(samples_ns: Sequence[int]) -> Summary:
    """Figures in milliseconds."""
    ordered = sorted(s / 1e6 for s in samples_ns)
    if not ordered:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return Summary(len(ordered), median(ordered), percentile(ordered, 90), percentile(ordered, 99), ordered[0],
                   ordered[-1])


def table(title: str, rows: Sequence[tuple[str, Summary]]) -> str:
    head = f"{'':<34}{'median':>9}{'p90':>9}{'p99':>9}{'min':>9}{'max':>9}{'n':>6}"
    lines = [title, head, "-" * len(head)]
    for label, s in rows:
        lines.append(f"{label:<34}{s.median:>9.3f}{s.p90:>9.3f}{s.p99:>9.3f}{s.min:>9.3f}{s.max:>9.3f}{s.n:>6}")
    lines.append("(milliseconds)")
    return "\n".join(lines)
