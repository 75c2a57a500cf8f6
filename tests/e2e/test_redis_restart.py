"""Redis restarts (persistence on, as docker-compose.yml runs it): nothing the receiver accepted is lost,
the receiver answers 503 while Redis is away and recovers by itself, and a running worker carries on."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis

from crmflow.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import sample
from tests.processes import answers, sandbox_auth, stack_env, start, stop, wait_for, wait_until_idle

TOKEN = "restart-token"


def reschedule_new_appointment(zoho: httpx.Client, n: int) -> str:
    """Create an appointment (Zoho notifies an insert) and reschedule it (an update): one history row due."""
    start_at = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    fields = {"Appointment_Name": f"Restart {n}", "Appointment_Start_Time": start_at.isoformat()}
    record_id: str = zoho.post("/_sandbox/appointments", json=fields).json()["data"][0]["id"]
    moved = {"id": record_id, "Appointment_Start_Time": (start_at + timedelta(hours=n + 1)).isoformat()}
    assert zoho.put("/crm/v7/Appointments__s", json={"data": [moved]}, headers=sandbox_auth(zoho)).status_code == 200
    return record_id


def rows_by_appointment(zoho: httpx.Client) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in zoho.get("/_sandbox/history").json()["data"]:
        counts[row["Appointment_Name"]["id"]] = counts.get(row["Appointment_Name"]["id"], 0) + 1
    return counts


def delivered(zoho: httpx.Client) -> list[Any]:
    return [d["status_code"] for d in zoho.get("/_sandbox/notifications").json()["deliveries"]]


def test_a_redis_restart_loses_no_accepted_event(tmp_path: Path) -> None:
    # Without appendonly the queued jobs would vanish with the restart: accepted (200) and never processed.
    data = tmp_path / "redis"
    data.mkdir()
    port = free_port()
    redis_server = EmbeddedRedis(port=port, appendonly=True, data_dir=data)
    redis_url = redis_server.start()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(redis_url, sandbox, ZOHO_NOTIFY_TOKEN=TOKEN, WORKER_RETRY_BASE_S="0.2", WORKER_RETRY_CAP_S="1")
    notify = ["--notify-url", f"{receiver}/webhooks/zoho", "--notify-token", TOKEN]
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *notify], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
    ]
    zoho = httpx.Client(base_url=sandbox, timeout=10)
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history") and answers(f"{receiver}/readyz"), "the stack")
        # 1. Accepted while no worker runs: the jobs wait in Redis.
        queued = [reschedule_new_appointment(zoho, n) for n in range(5)]
        wait_for(lambda: delivered(zoho).count(200) == 10, "the receiver to accept every notification")

        # 2. Redis goes away: the receiver refuses (so senders retry) and is not ready.
        redis_server.stop()
        body = sample("zoho/appointment_update") | {"token": TOKEN}
        refused = httpx.post(f"{receiver}/webhooks/zoho", json=body, timeout=10)
        not_ready = httpx.get(f"{receiver}/readyz", timeout=10)

        # 3. Redis comes back from its append-only file; the receiver recovers without a restart.
        redis_server = EmbeddedRedis(port=port, appendonly=True, data_dir=data)
        redis_server.start()
        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver to be ready again")

        # 4. A worker processes everything accepted before the restart.
        processes.append(start(["worker"], env, tmp_path, tmp_path / "worker.log"))
        wait_for(lambda: all(rows_by_appointment(zoho).get(i) for i in queued), "the queued reschedules")

        # 5. Redis restarts under the running worker, which carries on by itself.
        redis_server.stop()
        time.sleep(1.0)  # an outage to live through, not a settle: the worker's polls fail meanwhile
        redis_server = EmbeddedRedis(port=port, appendonly=True, data_dir=data)
        redis_server.start()
        after = reschedule_new_appointment(zoho, 9)
        wait_for(lambda: rows_by_appointment(zoho).get(after) == 1, "a reschedule after the restart", timeout_s=60)
        # Every callback the sandbox owes has gone out (an insert and an update per appointment, sent once,
        # never retried) and every job it queued has finished: nothing can add a row any more.
        callbacks = 2 * len([*queued, after])
        wait_until_idle(
            redis.Redis.from_url(redis_url), "the last jobs", also=lambda: len(delivered(zoho)) == callbacks
        )
        counts = rows_by_appointment(zoho)
    finally:
        zoho.close()
        for process in processes:
            stop(process)
        redis_server.stop()

    assert refused.status_code == 503
    assert not_ready.status_code == 503
    assert {i: counts.get(i) for i in [*queued, after]} == dict.fromkeys([*queued, after], 1)
