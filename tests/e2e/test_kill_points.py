"""Workers SIGKILLed at each named point of a job: the job runs again and each reschedule is logged exactly once.

Three reschedules, three doomed workers (one job each): one killed just before the CRM write, one between
the CRM's answer and crmflow's bookkeeping (the ledger), one after its actions but before the new state is
saved. A fresh worker then finishes all three. Without the read-before-write (Zoho) or the pending note
looked up before writing (HubSpot), the second kill would leave a row or note in the CRM that the retry
writes again: two entries for one reschedule.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import enqueue
from tests.processes import sandbox_auth, stack_env, start, stop, wait_for, wait_until_idle
from workers.checkpoints import JOB_POINTS, paused_key
from workers.contract import QUEUE_NAME, ChangeEvent

JOB_TIMEOUT_S = 10  # a killed worker's job runs again after WORKER_JOB_TIMEOUT_S + 10 s


def zoho_appointments(zoho: httpx.Client) -> list[str]:
    """Three Zoho appointments, each rescheduled once (a first-seen reschedule crmflow logs)."""
    ids = ["5545974000002555001"]
    for n in range(2):
        start = (datetime.now(UTC) + timedelta(days=3 + n)).replace(microsecond=0).isoformat()
        created = zoho.post(
            "/_sandbox/appointments", json={"Appointment_Name": f"Kill {n}", "Appointment_Start_Time": start}
        )
        ids.append(created.json()["data"][0]["id"])
    headers = sandbox_auth(zoho)
    for n, record_id in enumerate(ids):
        new_start = (datetime.now(UTC) + timedelta(days=10 + n)).replace(microsecond=0).isoformat()
        body = {"data": [{"id": record_id, "Appointment_Start_Time": new_start}]}
        assert zoho.put("/crm/v7/Appointments__s", json=body, headers=headers).status_code == 200
    return ids


def zoho_entries(zoho: httpx.Client, record_id: str) -> int:
    return sum(row["Appointment_Name"]["id"] == record_id for row in zoho.get("/_sandbox/history").json()["data"])


def hubspot_appointments(hubspot: httpx.Client) -> list[str]:
    """Three HubSpot appointments, each rescheduled once by a user."""
    ids = ["51204030001"]
    for n in range(2):
        props = {"hs_appointment_name": f"Kill {n}", "hs_appointment_start": f"2026-12-0{n + 1}T09:00:00Z"}
        ids.append(hubspot.post("/_sandbox/hubspot/appointments", json={"properties": props}).json()["id"])
    for n, record_id in enumerate(ids):
        change = {"properties": {"hs_appointment_start": f"2026-12-1{n}T15:00:00Z"}, "user_id": "71230003"}
        assert hubspot.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=change).status_code == 200
    return ids


def hubspot_entries(hubspot: httpx.Client, record_id: str) -> int:
    return sum(
        record_id in str(note["associations"]) for note in hubspot.get("/_sandbox/hubspot/notes").json()["notes"]
    )


def kill_when_held(store: redis.Redis, point: str) -> None:
    """SIGKILL the worker holding a job at `point`, as soon as it does."""
    wait_for(lambda: store.exists(paused_key(point)) == 1, f"a job held at {point}")
    pid = store.get(paused_key(point))
    assert isinstance(pid, bytes)
    os.kill(int(pid), signal.SIGKILL)


CASES: dict[str, tuple[str, Callable[[httpx.Client], list[str]], Callable[[httpx.Client, str], int], str]] = {
    "zoho": ("Appointments__s", zoho_appointments, zoho_entries, "POST /crm/v7/Appointments_Rescheduled_History__s"),
    "hubspot": ("appointments", hubspot_appointments, hubspot_entries, "POST /crm/objects/2026-03/notes"),
}


@pytest.mark.parametrize("source", list(CASES))
def test_killed_at_every_point_each_reschedule_is_logged_once(
    source: str, sandbox_url: str, redis_url: str, tmp_path: Path
) -> None:
    module, prepare, entries, write = CASES[source]
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    zoho = httpx.Client(base_url=sandbox_url, timeout=10)
    ids = prepare(zoho)
    env = stack_env(redis_url, sandbox_url, WORKER_JOB_TIMEOUT_S=str(JOB_TIMEOUT_S), WORKER_MAX_JOBS="1")
    doomed = [
        start(["worker"], env | {"CRMFLOW_TEST_PAUSE_AT": point}, tmp_path, tmp_path / f"doomed-{point}.log")
        for point in JOB_POINTS
    ]
    recovery: subprocess.Popen[bytes] | None = None
    try:
        wait_for(lambda: store.exists(f"{QUEUE_NAME}:health-check") == 1, "the workers")
        for n, record_id in enumerate(ids):
            enqueue(
                store,
                ChangeEvent.model_validate(
                    {
                        "source": source,
                        "module": module,
                        "record_id": record_id,
                        "operation": "update",
                        "notified_at_ms": n + 1,
                    }
                ),
            )
        for point in JOB_POINTS:
            kill_when_held(store, point)
        killed_at = time.monotonic()
        for process in doomed:
            process.wait(timeout=10)
        recovery = start(["worker"], env, tmp_path, tmp_path / "recovery.log")

        def all_logged() -> bool:
            return all(entries(zoho, i) >= 1 for i in ids)

        wait_for(all_logged, "every reschedule logged", timeout_s=JOB_TIMEOUT_S + 40)
        recovered_s = time.monotonic() - killed_at
        wait_until_idle(store, "the queue to empty", timeout_s=15)
        counts = [entries(zoho, i) for i in ids]
        writes = zoho.get("/_sandbox/requests").json()["by_endpoint"].get(write, 0)
    finally:
        for process in [*doomed, *([recovery] if recovery else [])]:
            stop(process)
        zoho.close()

    assert counts == [1, 1, 1], (counts, (tmp_path / "recovery.log").read_text())
    # The job killed between the CRM's answer and the ledger had written already: 3 writes in all, not 4.
    assert writes == 3
    assert recovered_s <= JOB_TIMEOUT_S + 10 + 10, recovered_s
