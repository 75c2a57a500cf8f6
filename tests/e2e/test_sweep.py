"""Sweeps through every process: webhooks switched off in the sandbox, reschedules made meanwhile, then `crmflow
sweep` (or a worker's own periodic sweep) logs each exactly once; a sweep killed half-way resumes without gaps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from crmflow.embedded_redis import free_port
from tests.processes import (
    answers,
    hubspot_retries_done,
    sandbox_auth,
    stack_env,
    start,
    stop,
    wait_for,
    wait_until_idle,
)
from workers import keys
from workers.contract import QUEUE_NAME

TOKEN = "e2e-notify-token"
SECRET = "sandbox-hubspot-client-secret"
ZOHO_KNOWN = "5545974000002555001"  # the sandbox's "AC Repair - James"
HUBSPOT_KNOWN = "51204030001"  # the sandbox's "AC Repair - James"
SOON = (datetime.now(UTC) + timedelta(days=5)).replace(hour=9, minute=0, second=0, microsecond=0)


@dataclass
class Stack:
    sandbox: str
    store: redis.Redis
    env: dict[str, str]
    logs: Path

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.sandbox, timeout=10)

    def webhooks(self, enabled: bool) -> None:
        with self.http() as http:
            assert http.post("/_sandbox/webhooks", json={"enabled": enabled}).json() == {
                "zoho": enabled,
                "hubspot": enabled,
            }

    def zoho_appointment(self, n: int) -> str:
        fields = {"Appointment_Name": f"Sweep {n}", "Appointment_Start_Time": (SOON + timedelta(hours=n)).isoformat()}
        with self.http() as http:
            return str(http.post("/_sandbox/appointments", json=fields).json()["data"][0]["id"])

    def zoho_reschedule(self, record_id: str, days: int) -> None:
        change = {"id": record_id, "Appointment_Start_Time": (SOON + timedelta(days=days)).isoformat()}
        with self.http() as http:
            answer = http.put("/crm/v7/Appointments__s", json={"data": [change]}, headers=sandbox_auth(http))
            assert answer.status_code == 200, answer.text

    def hubspot_appointment(self, n: int) -> str:
        with self.http() as http:
            body = {"properties": {"hs_appointment_name": f"Sweep {n}"}}
            return str(http.post("/_sandbox/hubspot/appointments", json=body).json()["id"])

    def hubspot_reschedule(self, record_id: str, days: int) -> None:
        body = {"properties": {"hs_appointment_start": (SOON + timedelta(days=days)).isoformat()}}
        with self.http() as http:
            assert http.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=body).status_code == 200

    def rows(self, record_id: str) -> int:
        with self.http() as http:
            rows = http.get("/_sandbox/history").json()["data"]
        return sum(row["Appointment_Name"]["id"] == record_id for row in rows)

    def notes(self, record_id: str) -> int:
        with self.http() as http:
            notes = http.get("/_sandbox/hubspot/notes").json()["notes"]
        return sum(record_id in note["associations"]["appointments"] for note in notes)

    def idle(self) -> None:
        def sent() -> bool:
            with self.http() as http:
                return hubspot_retries_done(http.get("/_sandbox/hubspot/webhooks").json()["deliveries"])

        wait_until_idle(self.store, f"the jobs\n{self.logs_text()}", also=sent)

    def sweep(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crmflow", "sweep", *args],
            env=self.env | env,
            cwd=self.logs,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def stack(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Sandbox (both CRMs notifying the receiver), receiver and one worker; `request.param`: worker settings."""
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(
        redis_url,
        sandbox,
        ZOHO_NOTIFY_TOKEN=TOKEN,
        HUBSPOT_CLIENT_SECRET=SECRET,
        PUBLIC_BASE_URL=receiver,
        SWEEP_LOOKBACK_S="600",
    )
    hooks = ["--notify-url", f"{receiver}/webhooks/zoho", "--notify-token", TOKEN]
    hooks += ["--hubspot-webhook-url", f"{receiver}/webhooks/hubspot"]
    worker_env = env | getattr(request, "param", {})
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *hooks], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], worker_env, tmp_path, tmp_path / "worker.log"),
    ]
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver")
        wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), "the worker")
        yield Stack(sandbox, store, env, tmp_path)
    finally:
        for process in processes:
            stop(process)


def missed_changes(stack: Stack) -> tuple[list[str], list[str]]:
    """Three new appointments in each CRM, each rescheduled once (while the webhooks are off)."""
    zoho = [stack.zoho_appointment(n) for n in range(3)]
    hubspot = [stack.hubspot_appointment(n) for n in range(3)]
    for n, record_id in enumerate(zoho):
        stack.zoho_reschedule(record_id, n + 1)
    for n, record_id in enumerate(hubspot):
        stack.hubspot_reschedule(record_id, n + 1)
    return zoho, hubspot


def test_a_sweep_logs_every_missed_reschedule_once_and_nothing_twice(stack: Stack) -> None:
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    # Notified as usual: logged by the pipeline.
    stack.zoho_reschedule(ZOHO_KNOWN, 1)
    stack.hubspot_reschedule(HUBSPOT_KNOWN, 1)
    wait_for(lambda: (stack.rows(ZOHO_KNOWN), stack.notes(HUBSPOT_KNOWN)) == (1, 1), "the notified reschedules")
    stack.idle()

    stack.webhooks(False)  # the receiver is out of reach; the CRMs give up on it
    zoho, hubspot = missed_changes(stack)
    stack.zoho_reschedule(ZOHO_KNOWN, 2)
    stack.hubspot_reschedule(HUBSPOT_KNOWN, 2)
    stack.webhooks(True)
    stack.idle()
    assert sum(map(stack.rows, zoho)) + sum(map(stack.notes, hubspot)) == 0  # nothing was notified

    swept = stack.sweep("--since", since)
    stack.idle()
    again = stack.sweep()
    stack.idle()

    assert swept.returncode == 0, swept.stderr
    assert [line.split(":")[0] for line in swept.stdout.splitlines()] == [
        "sweep zoho/Appointments__s",
        "sweep hubspot/appointments",
    ]
    assert all(line.endswith(": complete") for line in swept.stdout.splitlines())
    assert again.returncode == 0, again.stderr
    assert [stack.rows(record_id) for record_id in zoho] == [1, 1, 1]
    assert [stack.notes(record_id) for record_id in hubspot] == [1, 1, 1]
    # The reschedule notified before is not logged again; the one missed after it is logged once.
    assert (stack.rows(ZOHO_KNOWN), stack.notes(HUBSPOT_KNOWN)) == (2, 2)

    bad = stack.sweep("--since", "yesterday")
    assert bad.returncode == 2 and "invalid --since" in bad.stderr


def test_a_sweep_killed_half_way_resumes_without_gaps_or_doubles(stack: Stack) -> None:
    stack.webhooks(False)
    zoho, hubspot = missed_changes(stack)

    # Held after its first page was queued (before the Zoho listing completed), then killed.
    held = subprocess.Popen(
        [sys.executable, "-m", "crmflow", "sweep"],
        env=stack.env | {"CRMFLOW_TEST_PAUSE_AT": "sweep_after_page"},
        cwd=stack.logs,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        paused = keys.paused_at("sweep_after_page")
        wait_for(lambda: bool(stack.store.exists(paused)), "the sweep to hold after its first page")
        os.kill(held.pid, signal.SIGKILL)
    finally:
        held.wait(timeout=10)
    assert stack.store.get(keys.sweep_cursor("zoho", "Appointments__s")) is None
    stack.store.delete(keys.paused_at("sweep_after_page"))
    stack.idle()

    resumed = stack.sweep()
    stack.idle()

    assert resumed.returncode == 0, resumed.stderr
    zoho_line = resumed.stdout.splitlines()[0]
    assert "already queued 0," not in zoho_line  # the killed sweep's jobs were found queued or done already
    assert [stack.rows(record_id) for record_id in zoho] == [1, 1, 1]
    assert [stack.notes(record_id) for record_id in hubspot] == [1, 1, 1]


def sweep_state(stack: Stack) -> dict[bytes, bytes]:
    state: Any = stack.store.hgetall(keys.duty_state("sweep:zoho"))
    return dict(state)


@pytest.mark.parametrize("stack", [{"SWEEP_INTERVAL_S": "1"}], indirect=True)
def test_a_worker_sweeps_by_itself_and_logs_a_missed_change_once(stack: Stack) -> None:
    stack.webhooks(False)
    zoho, hubspot = stack.zoho_appointment(7), stack.hubspot_appointment(7)
    stack.zoho_reschedule(zoho, 3)
    stack.hubspot_reschedule(hubspot, 3)

    wait_for(lambda: (stack.rows(zoho), stack.notes(hubspot)) == (1, 1), f"the worker's sweep\n{stack.logs_text()}")
    finished = float(sweep_state(stack).get(b"finished_at", 0))

    def swept_twice_more() -> bool:
        state = sweep_state(stack)
        return float(state[b"finished_at"]) > finished + 1.5 and state[b"state"] == b"ok"

    wait_for(swept_twice_more, "two more sweeps")
    stack.idle()
    assert (stack.rows(zoho), stack.notes(hubspot)) == (1, 1)
