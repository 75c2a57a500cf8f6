"""Metrics of real processes: a worker serving WORKER_METRICS_PORT and the receiver's /metrics, scraped over
HTTP while real jobs run against the sandbox (sandbox → receiver → Redis → worker → sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from crmflow.embedded_redis import free_port
from tests.e2e.test_pipeline import TOKEN, Stack, reschedule
from tests.processes import answers, stack_env, start, stop, wait_for, wait_until_idle

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
HISTORY_PATH = "/crm/v7/Appointments_Rescheduled_History__s"


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """The pipeline's processes, the worker serving its metrics; yields the stack and the worker's metrics URL."""
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox_port, receiver_port, metrics_port = free_port(), free_port(), free_port()
    sandbox_url, receiver_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(redis_url, sandbox_url, ZOHO_NOTIFY_TOKEN=TOKEN, ZOHO_CHANNEL_IDS="1000000068001")
    sandbox_args = ["sandbox", "--port", str(sandbox_port), "--notify-url", f"{receiver_url}/webhooks/zoho"]
    processes = [
        start([*sandbox_args, "--notify-token", TOKEN], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env | {"WORKER_METRICS_PORT": str(metrics_port)}, tmp_path, tmp_path / "worker.log"),
    ]
    worker_metrics = f"http://127.0.0.1:{metrics_port}"
    try:
        wait_for(lambda: answers(f"{sandbox_url}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver_url}/readyz"), "the receiver")
        wait_for(lambda: answers(f"{worker_metrics}/metrics"), "the worker's metrics")
        yield Stack(sandbox_url, receiver_url, store, tmp_path), worker_metrics
    finally:
        for process in processes:
            stop(process)


def test_counters_move_as_real_jobs_run(stack: tuple[Stack, str]) -> None:
    pipeline, worker = stack
    before = scrape(worker)
    assert get(before, "crmflow_redis_up") == 1

    reschedule(pipeline, datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=4))
    wait_for(lambda: len(pipeline.history()) == 1, f"the history row\n{pipeline.logs_text()}")
    wait_until_idle(pipeline.store, f"the job\n{pipeline.logs_text()}")
    after = scrape(worker)
    received = scrape(pipeline.receiver)

    assert get(received, "crmflow_webhooks_total", source="zoho", outcome="accepted") >= 1
    assert get(after, "crmflow_jobs_total", source="zoho", outcome="processed") >= 1
    created = {"rule": "zoho-log-reschedules", "action": "log_reschedule_history", "outcome": "created"}
    assert get(after, "crmflow_actions_total", **created) == 1
    for operation, status in (("refresh_token", "200"), ("get_record", "200"), ("create_history", "201")):
        labels = {"source": "zoho", "operation": operation, "status": status}
        assert get(after, "crmflow_crm_requests_total", **labels) >= 1, (operation, sorted(after))
    timed = get(after, "crmflow_crm_request_duration_seconds_count", source="zoho", operation="get_record")
    assert timed >= 1
    assert get(after, "crmflow_event_lag_seconds_count", source="zoho") == 1
    assert 0 <= get(after, "crmflow_event_lag_seconds_sum", source="zoho") < 60
    assert get(after, "crmflow_queue_depth") == 0


def test_a_refused_write_shows_as_a_dead_letter(stack: tuple[Stack, str]) -> None:
    pipeline, worker = stack
    entry = {"code": "INVALID_DATA", "details": {}, "message": "invalid data", "status": "error"}
    fault = {"method": "POST", "path_prefix": HISTORY_PATH, "status": 400, "body": {"data": [entry]}}
    with pipeline.zoho() as zoho:
        assert zoho.post("/_sandbox/faults", json=[fault]).status_code == 200

    reschedule(pipeline, datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=6))
    wait_for(lambda: get(scrape(worker), "crmflow_deadletters") == 1, f"the dead letter\n{pipeline.logs_text()}")
    after = scrape(worker)

    dead = {"rule": "zoho-log-reschedules", "action": "log_reschedule_history", "outcome": "dead_lettered"}
    assert get(after, "crmflow_actions_total", **dead) == 1
    assert get(after, "crmflow_crm_requests_total", source="zoho", operation="create_history", status="400") == 1
    assert get(after, "crmflow_event_lag_seconds_count", source="zoho") == 0
