"""Redis refusing writes (maxmemory reached, noeviction): the receiver is not ready and refuses notifications
with 503 so that senders retry, a running job waits and retries instead of failing, and everything recovers
by itself once Redis takes writes again, with nothing lost and no worker restarted."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import redis

from crmflow.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import sample
from tests.e2e.test_redis_restart import delivered, reschedule_new_appointment, rows_by_appointment
from tests.processes import answers, stack_env, start, stop, wait_for, wait_until_idle

TOKEN = "full-token"


def test_redis_at_maxmemory_is_not_ready_refuses_then_recovers_with_nothing_lost(tmp_path: Path) -> None:
    redis_server = EmbeddedRedis()
    redis_url = redis_server.start()
    store = redis.Redis.from_url(redis_url)
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    # Refusals shorter than the worker's patience (WORKER_REDIS_OUTAGE_S, 30 s): its commands wait and carry on.
    # Longer ones are tests/workers/test_main.py's.
    env = stack_env(redis_url, sandbox, ZOHO_NOTIFY_TOKEN=TOKEN, WORKER_RETRY_BASE_S="0.2", WORKER_RETRY_CAP_S="1")
    notify = ["--notify-url", f"{receiver}/webhooks/zoho", "--notify-token", TOKEN]
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *notify], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker.log"),
    ]
    zoho = httpx.Client(base_url=sandbox, timeout=10)
    body = sample("zoho/appointment_update") | {"token": TOKEN}
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history") and answers(f"{receiver}/readyz"), "the stack")
        # The worker's first fetch takes 2 s: Redis fills up while that job runs.
        slow_fetch = {"method": "GET", "path_prefix": "/crm/v7/Appointments__s/", "delay_ms": 2000, "times": 1}
        assert zoho.post("/_sandbox/faults", json=[slow_fetch]).status_code == 200
        moved = reschedule_new_appointment(zoho, 1)
        wait_for(lambda: delivered(zoho).count(200) == 2, "the receiver to accept both notifications")

        store.config_set("maxmemory", 1)  # noeviction (the default): every write is refused from now on
        not_ready = httpx.get(f"{receiver}/readyz", timeout=10)
        refused = httpx.post(f"{receiver}/webhooks/zoho", json=body, timeout=10)
        time.sleep(3.0)  # an outage to live through, not a settle: the running job's writes are refused meanwhile
        store.config_set("maxmemory", 0)

        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver to be ready again")
        resent = httpx.post(f"{receiver}/webhooks/zoho", json=body, timeout=10)
        wait_for(lambda: rows_by_appointment(zoho).get(moved) == 1, "the reschedule's history row", timeout_s=60)
        wait_until_idle(store, "the last jobs")
        counts = rows_by_appointment(zoho)
        dead = store.zcard("crmflow:deadletters")
    finally:
        zoho.close()
        for process in processes:
            stop(process)
        redis_server.stop()

    assert not_ready.status_code == 503
    assert not_ready.json()["redis"] == "OutOfMemoryError"
    assert refused.status_code == 503
    assert resent.status_code == 200
    assert counts == {moved: 1}
    assert dead == 0
    worker_log = (tmp_path / "worker.log").read_text()
    assert "starting a new worker" not in worker_log
    assert "Traceback" not in worker_log
