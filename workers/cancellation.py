"""Cancellation: give a background loop's stop request back to it when a library swallowed it."""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise CancelledError when the current task has been asked to stop.

    A task's cancellation can be lost inside redis-py (5.x, on Python 3.11: seen in a duty's SET NX and its
    lock release) — the command returns normally and the task goes on as if never cancelled. A loop that
    only ever sleeps and calls Redis would then run on, and whoever awaits its end (a worker stopping)
    would wait for ever. Loops call this before each sleep so that a stop asked for is a stop done.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
