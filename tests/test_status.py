"""`crmflow status [--json]`: the text view, the command on real Redis, and a SIGKILLed worker gone within 30 s."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from arq.connections import ArqRedis

from crmflow.embedded_redis import free_port
from crmflow.status import format_status, span
from tests.processes import crmflow_env, start, stop, wait_for
from tests.test_health import heartbeat_keys, worker_env
from workers import keys
from workers.channel_upkeep import Failure
from workers.heartbeat import WorkerFacts
from workers.status import ChannelState, DutyRun, QueueState, Status, SweepState

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def worker(pid: int) -> WorkerFacts:
    started = NOW - timedelta(hours=2, minutes=5)
    return WorkerFacts(f"host-a:{pid}:ab12cd34", "host-a", pid, started, "0.1.0", ("zoho",), NOW - timedelta(seconds=1))


def status_at(**changes: Any) -> Status:
    values: dict[str, Any] = {
        "at": NOW,
        "queue": QueueState(depth=3, due=2, oldest_age_s=75.0),
        "workers": (worker(41),),
        "deadletters": {"NOT_ALLOWED": 2, "HTTP_500": 1},
        "last_notifications": {"hubspot": None, "zoho": NOW - timedelta(minutes=3, seconds=12)},
        "channels": ChannelState(
            upkeep=DutyRun(
                "zoho-channels",
                "ok",
                "w1",
                NOW - timedelta(minutes=10),
                NOW - timedelta(minutes=9),
                "1000000068001 ok: 6d 22h left",
                "",
            ),
            failures={},
        ),
        "sweeps": (
            SweepState(
                "zoho",
                DutyRun(
                    "sweep:zoho",
                    "failed",
                    "w1",
                    NOW - timedelta(minutes=2),
                    NOW - timedelta(minutes=1),
                    "",
                    "SweepError: boom\x1b[31m",
                ),
                {"Appointments__s": NOW - timedelta(minutes=5)},
            ),
        ),
    }
    return Status(**(values | changes))


def test_the_text_view_says_each_fact_on_a_line_of_its_own() -> None:
    assert format_status(status_at()).splitlines() == [
        "crmflow status at 2026-11-30 09:00:00 UTC",
        "queue: 3 jobs, 2 due; the oldest due job has waited 1m 15s",
        "workers alive: 1",
        "  host-a pid 41 (host-a:41:ab12cd34), version 0.1.0, zoho; up 2h 5m, "
        "last beat 1s ago (2026-11-30 08:59:59 UTC)",
        "dead letters: 3 (NOT_ALLOWED 2, HTTP_500 1)",
        "last notification:",
        "  hubspot: none in the last 35 days",
        "  zoho: 3m 12s ago (2026-11-30 08:56:48 UTC)",
        "zoho channels: ok 9m 0s ago (2026-11-30 08:51:00 UTC): 1000000068001 ok: 6d 22h left",
        "sweeps:",
        "  zoho: failed 1m 0s ago (2026-11-30 08:59:00 UTC): SweepError: boom\\x1b[31m",
        "    Appointments__s: every change before 5m 0s ago (2026-11-30 08:55:00 UTC) queued",
    ]


def test_spans_read_as_people_say_them() -> None:
    assert [span(s) for s in (0.42, 3, 12.9, 75, 3 * 3600 + 5 * 60 + 9, 2 * 86_400 + 4 * 3600)] == [
        "0.4s",
        "3s",
        "12s",
        "1m 15s",
        "3h 5m",
        "2d 4h",
    ]


def test_the_text_view_of_an_idle_install_and_of_failing_channels() -> None:
    failing = ChannelState(
        upkeep=None, failures={"1000000068001": Failure("not renewed: HTTP 500", "2026-11-30T08:00:00+00:00", "w1")}
    )
    idle = status_at(
        queue=QueueState(0, 0, None), workers=(), deadletters={}, last_notifications={}, channels=failing, sweeps=()
    )

    assert format_status(idle).splitlines()[1:] == [
        "queue: 0 jobs, 0 due",
        "workers alive: 0",
        "dead letters: 0",
        "last notification:",
        "  none",
        "zoho channels: never ran",
        "  1000000068001 not kept: not renewed: HTTP 500 (at 2026-11-30T08:00:00+00:00, by w1)",
        "sweeps: none ran",
    ]


def crmflow_status(redis_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmflow", "status", *args],
        env=crmflow_env(REDIS_URL=redis_url),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def shown_age_s(line: str) -> float:
    """The age a `last notification` line shows, in seconds: 0 for 'just now', else its span read back."""
    said = re.fullmatch(r"  \w+: (?:just now|(.+) ago) \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", line)
    assert said is not None, line
    if said[1] is None:
        return 0.0
    units = {"d": 86_400, "h": 3600, "m": 60, "s": 1}
    parts = re.fullmatch(r"(\d+(?:\.\d)?)([dhms])(?: (\d+)([dhms]))?", said[1])
    assert parts is not None, line
    first = float(parts[1]) * units[parts[2]]
    return first + (int(parts[3]) * units[parts[4]] if parts[3] else 0)


async def test_the_command_reads_redis_and_prints_text_or_json(redis: ArqRedis, redis_url: str, tmp_path: Path) -> None:
    notified_ms = int(time.time() * 1000)
    await redis.set(keys.last_notification("zoho"), notified_ms)

    text = crmflow_status(redis_url, tmp_path)
    # The command saw the notification at most this old: its age is bounded by how long the command took to run
    # (a busy machine may take seconds to start Python), not by a fixed small number.
    ran_s = time.time() - notified_ms / 1000
    shown = crmflow_status(redis_url, tmp_path, "--json")

    assert text.returncode == 0, text.stderr
    (zoho,) = [line for line in text.stdout.splitlines() if line.startswith("  zoho: ")]
    moment = datetime.fromtimestamp(notified_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert zoho.endswith(f"({moment})"), zoho
    assert 0 <= shown_age_s(zoho) <= ran_s + 0.05, (zoho, ran_s)  # 0.05: the span is rounded to a tenth
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["queue"] == {"depth": 0, "due": 0, "oldest_age_s": None}
    assert data["last_notifications"]["hubspot"] is None and data["last_notifications"]["zoho"].endswith("+00:00")
    assert (data["workers"], data["deadletters"], data["sweeps"]) == ([], {"total": 0, "by_error": {}}, [])


def test_the_command_names_redis_without_its_password_when_it_fails(tmp_path: Path) -> None:
    done = crmflow_status(f"redis://:s3cret@127.0.0.1:{free_port()}/0", tmp_path)

    assert done.returncode == 2
    assert done.stderr.startswith("crmflow: Redis at redis://:***@127.0.0.1:")
    assert "s3cret" not in done.stderr


def live_pids(redis_url: str, cwd: Path) -> set[int]:
    done = crmflow_status(redis_url, cwd, "--json")
    assert done.returncode == 0, done.stderr
    return {entry["pid"] for entry in json.loads(done.stdout)["workers"]}


@pytest.mark.slow
def test_a_sigkilled_worker_is_reported_gone_within_30_s_while_the_other_stays(redis_url: str, tmp_path: Path) -> None:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    env = worker_env(redis_url)
    workers = [start(["worker"], env, tmp_path, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        wait_for(lambda: len(heartbeat_keys(store)) == 2, "both workers' heartbeats", timeout_s=30)
        assert live_pids(redis_url, tmp_path) == {w.pid for w in workers}
        victim, survivor = workers
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed = time.monotonic()
        wait_for(lambda: live_pids(redis_url, tmp_path) == {survivor.pid}, "status to drop the killed worker", 30)
        noticed_s = time.monotonic() - killed
        text = subprocess.run(
            [sys.executable, "-m", "crmflow", "status"],
            env=crmflow_env(REDIS_URL=redis_url),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        for process in workers:
            stop(process)

    assert noticed_s < 30
    assert "workers alive: 1" in text.stdout
    assert f" pid {survivor.pid} " in text.stdout and f" pid {victim.pid} " not in text.stdout
