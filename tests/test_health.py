"""`crmflow health`: the verdicts, and the worker check against real worker processes (alive, killed, stopped)."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from crmflow.embedded_redis import free_port
from crmflow.health import http_verdict, redacted, worker_verdict
from tests.processes import REPO, crmflow_env, start, stop, wait_for
from workers import keys
from workers.heartbeat import HEARTBEAT_TTL_S, WorkerFacts

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def facts(host: str, pid: int, age_s: float) -> WorkerFacts:
    return WorkerFacts(f"{host}:{pid}:ab12cd34", host, pid, NOW, "0.1.0", ("zoho",), NOW - timedelta(seconds=age_s))


def test_a_worker_is_healthy_when_a_live_heartbeat_comes_from_its_host() -> None:
    live = [facts("worker-1", 7, 0.4), facts("worker-2", 8, 0.1), facts("worker-1", 9, 1.2)]

    assert worker_verdict(live, "worker-1", NOW) == (
        True,
        "2 workers live on worker-1: worker-1:7:ab12cd34 (pid 7) beat 0.4s ago",
    )
    assert worker_verdict(live, "worker-3", NOW) == (
        False,
        "no live worker heartbeat from host worker-3 (3 live on other hosts)",
    )
    assert worker_verdict([], "worker-3", NOW) == (
        False,
        "no live worker heartbeat from host worker-3 (none on any host)",
    )


def test_a_worker_check_can_name_the_process_or_want_several_on_the_host() -> None:
    live = [facts("worker-1", 7, 0.4), facts("worker-2", 8, 0.1), facts("worker-1", 9, 1.2)]

    assert worker_verdict(live, "worker-1", NOW, pid=9) == (
        True,
        "worker live on worker-1: worker-1:9:ab12cd34 (pid 9) beat 1.2s ago",
    )
    assert worker_verdict(live, "worker-1", NOW, pid=8) == (
        False,
        "no live worker heartbeat from pid 8 on host worker-1 (live: pid 7, 9)",
    )
    assert worker_verdict(live, "worker-1", NOW, expect=2)[0] is True
    assert worker_verdict(live, "worker-1", NOW, expect=3) == (
        False,
        "only 2 of 3 expected workers live on host worker-1 (pid 7, 9)",
    )


def test_an_http_check_needs_a_200() -> None:
    url = "http://127.0.0.1:8000/readyz"

    assert http_verdict("receiver", url, 200, None) == (True, f"receiver ok at {url}")
    assert http_verdict("receiver", url, 503, None) == (False, f"receiver answered 503 at {url}")
    assert http_verdict("receiver", url, None, "ConnectError") == (
        False,
        f"receiver did not answer at {url}: ConnectError",
    )


def test_a_redis_password_is_never_shown() -> None:
    assert redacted("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redacted("redis://redis:6379/0") == "redis://redis:6379/0"


def health(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmflow", "health", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )


def test_the_http_checks_fail_with_one_line_when_nothing_answers(tmp_path: Path) -> None:
    port = free_port()
    for role, path in (("receiver", "/readyz"), ("sandbox", "/_sandbox/webhooks")):
        result = health([role, "--port", str(port)], crmflow_env(), tmp_path)

        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith(f"crmflow: unhealthy: {role} did not answer at http://127.0.0.1:{port}{path}: ")
        assert len(result.stderr.splitlines()) == 1


def test_the_worker_check_fails_when_redis_does_not_answer(tmp_path: Path) -> None:
    port = free_port()

    result = health(["worker"], crmflow_env(REDIS_URL=f"redis://:s3cret@127.0.0.1:{port}/0"), tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith(f"crmflow: unhealthy: Redis at redis://:***@127.0.0.1:{port}/0 is unavailable (")
    assert "s3cret" not in result.stderr


def worker_env(redis_url: str) -> dict[str, str]:
    """A worker with HubSpot on (a CRM nobody calls: no job is queued) and no periodic duties."""
    return crmflow_env(
        REDIS_URL=redis_url,
        RULES_PATH=str(REPO / "rules" / "default.yaml"),
        HUBSPOT_ACCESS_TOKEN="unused-token",
        HUBSPOT_API_BASE=f"http://127.0.0.1:{free_port()}",
        SWEEP_INTERVAL_S="0",
    )


def heartbeat_keys(store: redis.Redis) -> list[bytes]:
    return list(store.scan_iter(match=keys.WORKER_HEARTBEAT_PATTERN))


@pytest.mark.slow
def test_a_worker_is_healthy_while_it_runs_and_unhealthy_within_seconds_of_a_sigkill(
    redis_url: str, tmp_path: Path
) -> None:
    store = redis.Redis.from_url(redis_url)
    env = worker_env(redis_url)
    worker = start(["worker"], env, tmp_path, tmp_path / "worker.log")
    try:
        wait_for(lambda: len(heartbeat_keys(store)) == 1, "the worker's heartbeat", timeout_s=30)
        alive = health(["worker"], env, tmp_path)
        (key,) = heartbeat_keys(store)
        raw = store.get(key)
        assert isinstance(raw, bytes)
        beat = WorkerFacts.from_json(raw)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        killed_at = datetime.now(UTC)
        left_ms = store.pttl(key)  # Redis drops the key at most this long after the kill
        assert isinstance(left_ms, int)
        wait_for(lambda: health(["worker"], env, tmp_path).returncode == 1, "the check to fail", timeout_s=30)
        noticed_s = (datetime.now(UTC) - killed_at).total_seconds()
        dead = health(["worker"], env, tmp_path)
    finally:
        stop(worker)

    assert alive.returncode == 0, alive.stderr
    assert alive.stdout.startswith(f"worker live on {beat.host}: {beat.worker_id} (pid {worker.pid})")
    assert (beat.pid, beat.sources, beat.worker_id.split(":")[1]) == (worker.pid, ("hubspot",), str(worker.pid))
    assert left_ms <= HEARTBEAT_TTL_S * 1000
    assert noticed_s < HEARTBEAT_TTL_S + 3
    assert dead.stderr.startswith(f"crmflow: unhealthy: no live worker heartbeat from host {beat.host}")
    wait_for(lambda: heartbeat_keys(store) == [], "Redis to expire the heartbeat", timeout_s=10)


@pytest.mark.slow
def test_a_cleanly_stopped_worker_removes_its_heartbeat(redis_url: str, tmp_path: Path) -> None:
    store = redis.Redis.from_url(redis_url)
    env = worker_env(redis_url)
    worker = start(["worker"], env, tmp_path, tmp_path / "worker.log")
    try:
        wait_for(lambda: len(heartbeat_keys(store)) == 1, "the worker's heartbeat", timeout_s=30)
        (key,) = heartbeat_keys(store)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    finally:
        stop(worker)

    assert worker.returncode == 0, (tmp_path / "worker.log").read_text()
    assert store.exists(key) == 0
    assert health(["worker"], env, tmp_path).returncode == 1


@pytest.mark.slow
def test_one_dead_worker_among_several_on_a_host_fails_its_pid_and_the_expected_count(
    redis_url: str, tmp_path: Path
) -> None:
    store = redis.Redis.from_url(redis_url)
    env = worker_env(redis_url)
    first = start(["worker"], env, tmp_path, tmp_path / "first.log")
    second = start(["worker"], env, tmp_path, tmp_path / "second.log")
    try:
        wait_for(lambda: len(heartbeat_keys(store)) == 2, "both workers' heartbeats", timeout_s=30)
        both = health(["worker", "--expect", "2"], env, tmp_path)
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=10)
        wait_for(
            lambda: health(["worker", "--expect", "2"], env, tmp_path).returncode == 1,
            "the expected count to fail",
            timeout_s=30,
        )
        expected = health(["worker", "--expect", "2"], env, tmp_path)
        dead_pid = health(["worker", "--pid", str(second.pid)], env, tmp_path)
        live_pid = health(["worker", "--pid", str(first.pid)], env, tmp_path)
        any_worker = health(["worker"], env, tmp_path)
        both_flags = health(["worker", "--pid", str(first.pid), "--expect", "2"], env, tmp_path)
    finally:
        stop(second)
        stop(first)

    assert both.returncode == 0, both.stderr
    assert both.stdout.startswith("2 workers live on ")
    assert expected.stderr.startswith("crmflow: unhealthy: only 1 of 2 expected workers live on host ")
    assert expected.stderr.rstrip().endswith(f"(pid {first.pid})")
    assert dead_pid.returncode == 1
    assert dead_pid.stderr.startswith(f"crmflow: unhealthy: no live worker heartbeat from pid {second.pid} on host ")
    assert live_pid.returncode == 0 and f"(pid {first.pid})" in live_pid.stdout
    assert any_worker.returncode == 0
    assert both_flags.returncode == 2 and "give --pid or --expect, not both" in both_flags.stderr
