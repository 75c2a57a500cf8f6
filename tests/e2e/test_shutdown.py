"""SIGTERM drains a worker: running jobs finish within the grace period (or go back to the queue), no new ones start."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import enqueue, zoho_event
from tests.processes import sandbox_auth, stack_env, start, stop, wait_for
from workers.contract import QUEUE_NAME

FIRST, SECOND = "5545974000002555001", "5545974000002555012"
STOPPED_PICKING = b"Setting allow_pick_jobs to `False`"  # arq 0.28's log line in its SIGTERM handler


@pytest.fixture
def sandbox(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, timeout=10) as client:
        # FIRST has never been rescheduled: reschedule it, so its first job logs one row.
        start_at = (datetime.now(UTC) + timedelta(days=9)).replace(microsecond=0).isoformat()
        body = {"data": [{"id": FIRST, "Appointment_Start_Time": start_at}]}
        assert client.put("/crm/v7/Appointments__s", json=body, headers=sandbox_auth(client)).status_code == 200
        yield client


event = zoho_event


def rows(zoho: httpx.Client, record_id: str) -> int:
    return sum(row["Appointment_Name"]["id"] == record_id for row in zoho.get("/_sandbox/history").json()["data"])


def slow_reads(zoho: httpx.Client, delay_ms: int) -> None:
    rule = {"method": "GET", "path_prefix": f"/crm/v7/Appointments__s/{FIRST}", "delay_ms": delay_ms, "times": 1}
    assert zoho.post("/_sandbox/faults", json=[rule]).status_code == 200


def test_sigterm_lets_the_running_job_finish_and_starts_no_other(
    sandbox: httpx.Client, redis_url: str, tmp_path: Path
) -> None:
    # Without the grace period arq cancels the running job at once: it would run again later, and a
    # deploy would turn every in-flight job into a retry.
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    slow_reads(sandbox, 3000)
    env = stack_env(redis_url, str(sandbox.base_url), WORKER_SHUTDOWN_GRACE_S="10")
    log = tmp_path / "worker.log"
    worker = start(["worker"], env, tmp_path, log)
    try:
        wait_for(lambda: store.exists(f"{QUEUE_NAME}:health-check") == 1, "the worker")
        enqueue(store, event(FIRST))
        wait_for(lambda: bool(store.keys("arq:in-progress:*")), "the job to start")
        worker.send_signal(signal.SIGTERM)
        # Queue SECOND once the worker has taken the signal (arq logs this as it stops picking up jobs).
        wait_for(lambda: STOPPED_PICKING in log.read_bytes(), "the worker to take the SIGTERM")
        enqueue(store, event(SECOND))
        worker.wait(timeout=15)
    finally:
        stop(worker)

    assert worker.returncode == 0
    assert rows(sandbox, FIRST) == 1  # finished, not cancelled
    assert store.zrange(QUEUE_NAME, 0, -1) == [event(SECOND).job_id().encode()]  # never started


def test_a_job_longer_than_the_grace_period_goes_back_to_the_queue(
    sandbox: httpx.Client, redis_url: str, tmp_path: Path
) -> None:
    # Handed back, the job is picked up by the next worker at once, not after its in-progress key expires.
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    slow_reads(sandbox, 6000)
    env = stack_env(redis_url, str(sandbox.base_url), WORKER_SHUTDOWN_GRACE_S="1", WORKER_JOB_TIMEOUT_S="30")
    first = start(["worker"], env, tmp_path, tmp_path / "first.log")
    try:
        wait_for(lambda: store.exists(f"{QUEUE_NAME}:health-check") == 1, "the worker")
        enqueue(store, event(FIRST))
        wait_for(lambda: bool(store.keys("arq:in-progress:*")), "the job to start")
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    finally:
        stop(first)
    assert rows(sandbox, FIRST) == 0
    restarted = time.monotonic()
    second = start(["worker"], env, tmp_path, tmp_path / "second.log")
    try:
        wait_for(lambda: rows(sandbox, FIRST) == 1, "the handed-back job", timeout_s=20)
        took_s = time.monotonic() - restarted
    finally:
        stop(second)

    assert took_s < 10  # well before the 40 s after which a killed worker's job would run again
    assert rows(sandbox, FIRST) == 1
