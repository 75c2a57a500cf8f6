"""A worker killed with SIGKILL in the middle of a job: another worker runs the job again, and the history
row is still written exactly once. Real processes, real Redis."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import redis

from crmflow.embedded_redis import free_port
from tests.processes import answers, sandbox_auth, stack_env, start, stop, wait_for, wait_until_idle
from workers.contract import QUEUE_NAME

APPOINTMENT = "5545974000002555001"
JOB_TIMEOUT_S = 5  # recovery after a crash takes WORKER_JOB_TIMEOUT_S + 10 s (arq's in-progress key)


def test_a_killed_workers_job_runs_again_within_its_timeout(redis_url: str, tmp_path: Path) -> None:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(redis_url, sandbox, ZOHO_NOTIFY_TOKEN="t", WORKER_JOB_TIMEOUT_S=str(JOB_TIMEOUT_S))
    notify = ["--notify-url", f"{receiver}/webhooks/zoho", "--notify-token", "t"]
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *notify], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
    ]
    doomed = start(["worker"], env, tmp_path, tmp_path / "worker-1.log")
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver")
        wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), "the first worker")
        with httpx.Client(base_url=sandbox) as zoho:
            # The worker's GET of the appointment hangs, so it is surely mid-job when it is killed.
            hang = {"method": "GET", "path_prefix": f"/crm/v7/Appointments__s/{APPOINTMENT}", "delay_ms": 17000}
            zoho.post("/_sandbox/faults", json=[hang | {"times": 1}])
            auth = sandbox_auth(zoho)
            start_at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat()
            body = {"data": [{"id": APPOINTMENT, "Appointment_Start_Time": start_at}]}
            assert zoho.put("/crm/v7/Appointments__s", json=body, headers=auth).status_code == 200

            def hanging() -> bool:
                return any(rule["fired"] for rule in zoho.get("/_sandbox/faults").json()["rules"])

            wait_for(hanging, "the worker's GET to reach Zoho")

            doomed.send_signal(signal.SIGKILL)
            doomed.wait()
            killed_at = time.monotonic()
            processes.append(start(["worker"], env, tmp_path, tmp_path / "worker-2.log"))

            def logged() -> bool:
                rows = zoho.get("/_sandbox/history").json()["data"]
                return any(row["Appointment_Name"]["id"] == APPOINTMENT for row in rows)

            wait_for(logged, "the job to run again", timeout_s=JOB_TIMEOUT_S + 10 + 20)
            recovered_s = time.monotonic() - killed_at
            # The rerun has finished (and nothing else is queued) before the rows are counted.
            wait_until_idle(store, "the rerun job to finish")
            rows = [
                r for r in zoho.get("/_sandbox/history").json()["data"] if r["Appointment_Name"]["id"] == APPOINTMENT
            ]
    finally:
        stop(doomed)
        for process in processes:
            stop(process)

    assert [row["Appointment_Name"]["id"] for row in rows] == [APPOINTMENT]
    assert rows[0]["Rescheduled_To"] == start_at
    # The job ran again once arq's in-progress key expired, and not long after.
    assert JOB_TIMEOUT_S + 10 - 2 <= recovered_s <= JOB_TIMEOUT_S + 10 + 5, recovered_s
