"""bench/stats.py: percentiles by linear interpolation, latency summaries."""

from __future__ import annotations

from bench.stats import percentile, summary_ms


def test_percentiles_interpolate_between_closest_ranks() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 100) == 40.0
    assert percentile(list(range(1, 101)), 99) == 99.01


def test_order_does_not_matter_and_no_values_is_none() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) is None


def test_summary_rounds_to_a_tenth_of_a_millisecond() -> None:
    summary = summary_ms([1.04, 2.0, 3.0])
    assert summary == {"p50_ms": 2.0, "p90_ms": 2.8, "p99_ms": 3.0, "max_ms": 3.0}
    assert summary_ms([]) == {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
