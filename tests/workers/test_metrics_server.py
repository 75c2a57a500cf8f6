"""A worker's /metrics server: what it serves over HTTP, Redis away, and a port already in use."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crmflow.embedded_redis import free_port
from tests.processes import REPO, crmflow_env
from workers.metrics import JOBS
from workers.metrics_server import MetricsPortError, MetricsServer, serve_metrics


def scrape(server: MetricsServer) -> dict[str, float]:
    response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        sample.name + str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


@pytest.fixture
def server(redis_url: str) -> Iterator[MetricsServer]:
    running = serve_metrics(free_port(), redis_url, host="127.0.0.1")
    try:
        yield running
    finally:
        running.close()


def test_it_serves_the_counters_and_the_shared_state(server: MetricsServer) -> None:
    before = scrape(server).get("crmflow_jobs_total[('outcome', 'processed'), ('source', 'zoho')]", 0.0)
    JOBS.labels("zoho", "processed").inc()

    after = scrape(server)

    assert after["crmflow_jobs_total[('outcome', 'processed'), ('source', 'zoho')]"] == before + 1
    assert after["crmflow_redis_up[]"] == 1
    assert after["crmflow_queue_depth[]"] == 0


def test_concurrent_scrapes_all_find_redis_up(server: MetricsServer) -> None:
    # More scrapes at once than the blocking client has connections (2): each waits its turn to read.
    with ThreadPoolExecutor(max_workers=8) as pool:
        ups = list(pool.map(lambda _: scrape(server)["crmflow_redis_up[]"], range(60)))

    assert ups == [1] * 60


def test_redis_away_still_serves_the_rest() -> None:
    running = serve_metrics(free_port(), f"redis://127.0.0.1:{free_port()}/0", host="127.0.0.1")
    try:
        samples = scrape(running)
    finally:
        running.close()

    assert samples["crmflow_redis_up[]"] == 0
    assert "crmflow_queue_depth[]" not in samples


def test_a_port_in_use_names_the_setting() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(MetricsPortError, match=f"WORKER_METRICS_PORT={port}: cannot listen"):
            serve_metrics(port, "redis://127.0.0.1:6379/0", host="127.0.0.1")


def test_the_worker_refuses_to_start_on_a_port_in_use(redis_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = crmflow_env(
            REDIS_URL=redis_url,
            RULES_PATH=str(REPO / "rules" / "default.yaml"),
            HUBSPOT_ACCESS_TOKEN="sandbox-hubspot-token",
            WORKER_METRICS_PORT=str(port),
        )

        finished = subprocess.run(
            [sys.executable, "-m", "crmflow", "worker"], env=env, cwd=tmp_path, capture_output=True, timeout=60
        )

    assert finished.returncode == 2
    assert f"WORKER_METRICS_PORT={port}: cannot listen" in finished.stderr.decode()
