"""Checkpoints: named points in a job where a test can hold a worker still, to kill it exactly there.

Off unless CRMFLOW_TEST_PAUSE_AT names a point (read by the worker's entry point). A held job marks
`crmflow:test:paused:<point>` in Redis with its process id and waits to be killed.
"""

from __future__ import annotations

import asyncio
import os

from redis.asyncio import Redis

from workers import keys

# Where a job can be held: just before the CRM write, between the CRM's answer and crmflow's own bookkeeping
# (the ledger), and after every action but before the record's new state is saved; and where a sweep can be:
# after the first page's changes are queued (and the cursor moved over them, where it can).
JOB_POINTS = ("before_crm_write", "after_crm_write", "before_snapshot")
SWEEP_POINTS = ("sweep_after_page",)
POINTS = JOB_POINTS + SWEEP_POINTS


def paused_key(point: str) -> str:
    return keys.paused_at(point)


class Checkpoints:
    """No-ops, except the one point a test asked to pause at."""

    def __init__(self, redis: Redis | None = None, pause_at: str | None = None) -> None:
        if pause_at is not None and pause_at not in POINTS:
            raise ValueError(f"unknown checkpoint {pause_at!r}; known: {', '.join(POINTS)}")
        self._redis = redis
        self._pause_at = pause_at

    async def reach(self, point: str) -> None:
        if point != self._pause_at or self._redis is None:
            return
        await self._redis.set(paused_key(point), str(os.getpid()))
        await asyncio.Event().wait()  # held here until the test kills this process


NO_CHECKPOINTS = Checkpoints()
