"""Retry delays: exponential backoff with full jitter, never shorter than what the CRM asked for. Pure."""

from __future__ import annotations


def backoff_s(attempt: int, *, base_s: float, cap_s: float, jitter: float, retry_after_s: float | None = None) -> float:
    """Delay before try `attempt + 1`: uniform in [0, min(cap, base * 2**(attempt-1))], at least retry_after.

    `jitter` is a number in [0, 1) supplied by the caller (random.random() in production), so this stays pure.
    """
    ceiling = min(cap_s, base_s * 2.0 ** max(attempt - 1, 0))
    delay = ceiling * jitter
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay
