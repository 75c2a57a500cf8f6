"""The whole pipeline as separate processes: sandbox → receiver → Redis → worker → sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from crmflow.embedded_redis import free_port
from tests.processes import answers, sandbox_auth, stack_env, start, stop, wait_for, wait_until_idle
from workers.contract import QUEUE_NAME

APPOINTMENT = "5545974000002555001"  # the sandbox's "AC Repair - James", never rescheduled
TOKEN = "e2e-notify-token"


@dataclass
class Stack:
    sandbox: str
    receiver: str
    store: redis.Redis
    logs: Path

    def zoho(self) -> httpx.Client:
        return httpx.Client(base_url=self.sandbox, timeout=5)

    def history(self) -> list[dict[str, Any]]:
        with self.zoho() as zoho:
            rows: list[dict[str, Any]] = zoho.get("/_sandbox/history").json()["data"]
        return [row for row in rows if row["Appointment_Name"]["id"] == APPOINTMENT]

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox_url, receiver_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(redis_url, sandbox_url, ZOHO_NOTIFY_TOKEN=TOKEN, ZOHO_CHANNEL_IDS="1000000068001")
    sandbox_args = ["sandbox", "--port", str(sandbox_port), "--notify-url", f"{receiver_url}/webhooks/zoho"]
    processes = [
        start([*sandbox_args, "--notify-token", TOKEN], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker.log"),
    ]
    health_key = f"{QUEUE_NAME}:health-check"
    try:
        wait_for(lambda: answers(f"{sandbox_url}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver_url}/readyz"), "the receiver")
        wait_for(lambda: bool(store.exists(health_key)), "the worker")
        yield Stack(sandbox_url, receiver_url, store, tmp_path)
    finally:
        for process in processes:
            stop(process)


def appointment(stack: Stack) -> dict[str, Any]:
    with stack.zoho() as zoho:
        body = zoho.get(f"/crm/v7/Appointments__s/{APPOINTMENT}", headers=sandbox_auth(zoho)).json()
    record: dict[str, Any] = body["data"][0]
    return record


def reschedule(stack: Stack, start: datetime) -> dict[str, Any]:
    """Reschedule through the Zoho API as a user would; return the appointment afterwards."""
    change = {"id": APPOINTMENT, "Appointment_Start_Time": start.isoformat(timespec="seconds")}
    change |= {"Reschedule_Reason": "By Team", "Reschedule_Note": "Technician ill"}
    with stack.zoho() as zoho:
        assert (
            zoho.put("/crm/v7/Appointments__s", json={"data": [change]}, headers=sandbox_auth(zoho)).status_code == 200
        )
    return appointment(stack)


def test_a_reschedule_flows_through_every_process(stack: Stack) -> None:
    with stack.zoho() as zoho:
        headers = {"Authorization": "Zoho-oauthtoken none"}
        assert zoho.get(f"/crm/v7/Appointments__s/{APPOINTMENT}", headers=headers).status_code == 401
    start_before = appointment(stack)["Appointment_Start_Time"]
    new_start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=4)

    record = reschedule(stack, new_start)

    wait_for(lambda: len(stack.history()) == 1, f"the history row\n{stack.logs_text()}")
    (row,) = stack.history()
    assert row["Appointment_Name"] == {"name": "AC Repair - James", "id": APPOINTMENT}
    assert row["Rescheduled_From"] == start_before
    assert row["Rescheduled_To"] == record["Appointment_Start_Time"] == new_start.isoformat(timespec="seconds")
    assert row["Rescheduled_Time"] == record["Rescheduled_Time"]
    assert row["Rescheduled_By"]["id"] == record["Rescheduled_By"]["id"] == "5545974000000393001"
    assert row["Reschedule_Reason"] == "By Team"
    assert row["Reschedule_Note"] == "Technician ill"


def test_a_notification_sent_twice_makes_exactly_one_row(stack: Stack) -> None:
    reschedule(stack, datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=5))
    wait_for(lambda: len(stack.history()) == 1, f"the history row\n{stack.logs_text()}")
    with stack.zoho() as zoho:
        (delivery,) = [d for d in zoho.get("/_sandbox/notifications").json()["deliveries"] if d["body"]["ids"]]
    body = delivery["body"]

    answers_ = [httpx.post(f"{stack.receiver}/webhooks/zoho", json=body) for _ in range(2)]
    resent = httpx.post(f"{stack.receiver}/webhooks/zoho", json=body | {"server_time": body["server_time"] + 1})
    # Every copy went straight to the receiver, which answers once its job is queued; the sandbox's own
    # callback (the only one this reschedule made) is in the log above. Nothing more can come.
    wait_until_idle(stack.store, f"the resent copy's job\n{stack.logs_text()}")

    assert [a.json()["duplicates"] for a in answers_] == [1, 1]
    assert resent.json()["queued"] == 1
    assert len(stack.history()) == 1
    with stack.zoho() as zoho:
        writes = zoho.get("/_sandbox/requests").json()["by_endpoint"]
    assert writes["POST /crm/v7/Appointments_Rescheduled_History__s"] == 1
