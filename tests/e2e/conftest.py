"""Shared by the multi-process tests: the `slow` mark, a sandbox process, and queueing a job as the receiver does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import start_sandbox, stop
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, ChangeEvent, dumps

E2E = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by mark (-m "not slow")
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory runs real processes: mark it slow (the hook sees the whole session's items)."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    """A `crmflow sandbox` process on a free port (no notifications sent)."""
    url, process = start_sandbox(tmp_path, log=tmp_path / "sandbox.log")
    try:
        yield url
    finally:
        stop(process)


def enqueue(store: redis.Redis, event: ChangeEvent) -> None:
    """Queue a job as the receiver does (arq's job format), from a synchronous test."""
    now_ms = int(time.time() * 1000)
    job = {"t": 1, "f": PROCESS_CHANGE, "a": [event.model_dump(mode="json")], "k": {}, "et": now_ms}
    store.psetex(f"arq:job:{event.job_id()}", 86_400_000, dumps(job))
    store.zadd(QUEUE_NAME, {event.job_id(): now_ms})


def zoho_event(record_id: str, notified_at_ms: int = 1) -> ChangeEvent:
    fields = {"source": "zoho", "module": "Appointments__s", "record_id": record_id, "operation": "update"}
    return ChangeEvent.model_validate(fields | {"notified_at_ms": notified_at_ms})
