"""backoff_s(): exponential, capped, full jitter, never below Retry-After."""

from __future__ import annotations

import pytest

from workers.backoff import backoff_s


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (8, 256.0), (9, 300.0), (50, 300.0)])
def test_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff_s(attempt, base_s=2, cap_s=300, jitter=0.999999) == pytest.approx(ceiling, rel=1e-5)


def test_full_jitter_spans_zero_to_ceiling() -> None:
    assert backoff_s(3, base_s=2, cap_s=300, jitter=0.0) == 0.0
    assert backoff_s(3, base_s=2, cap_s=300, jitter=0.5) == 4.0


def test_retry_after_is_a_floor() -> None:
    assert backoff_s(1, base_s=2, cap_s=300, jitter=0.1, retry_after_s=60) == 60
    assert backoff_s(9, base_s=2, cap_s=300, jitter=0.9, retry_after_s=1) == 270
