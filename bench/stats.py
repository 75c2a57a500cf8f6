"""Stats: percentiles and rates of measured samples. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation between the closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p90, p99 and max of latencies in ms, rounded to 0.1 ms."""

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 1)

    return {
        "p50_ms": rounded(percentile(values, 50)),
        "p90_ms": rounded(percentile(values, 90)),
        "p99_ms": rounded(percentile(values, 99)),
        "max_ms": rounded(max(values) if values else None),
    }
