"""No personal field, secret or token in any crmflow process's log: a real stack fed distinctive personal values.

The sandbox (both CRMs, with credentials of this test's own), a receiver and a worker logging JSON lines
(LOG_FORMAT=json). Zoho: an appointment whose name, address, free text and reschedule note hold personal
values is rescheduled (a history row is written), then rescheduled again while Zoho refuses the history row
with an answer that repeats those values (a dead letter). HubSpot: an appointment renamed after a person and
rescheduled (a note is written), and a signed batch whose contact event carries an email and a phone number.
Then `crmflow status` and `crmflow status --json` run. Every line of the receiver's and the worker's logs must
be one JSON object, the job lines must carry their context, and neither the logs nor the status outputs may
hold any of the personal values, the CRM credentials, the notify token, the webhook secret or the access token
the sandbox issued. The sandbox's own log is the CRM's, not crmflow's, and is left out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from crmflow.embedded_redis import free_port
from tests.processes import answers, stack_env, start, stop, wait_for, wait_until_idle
from workers import keys
from workers.contract import QUEUE_NAME

ZOHO_APPOINTMENT = "5545974000002555001"
HUBSPOT_APPOINTMENT = "51204030001"
HISTORY_PATH = "/crm/v7/Appointments_Rescheduled_History__s"

# Personal values no code or sample of crmflow contains: names, emails, phone numbers, free text.
NAME = "Quillon Zephyrine-Ashgrove"
EMAIL = "quillon.zephyrine@personal.example"
PHONE = "+44 7700 900461"
ADDRESS = "17 Larkspur Wynd, Ottercombe"
NOTE = "Gate code 4471, dog called Bramblewick"
HUBSPOT_NAME = "Marisol Tenterden-Quay"
PERSONAL = [NAME, "Zephyrine", EMAIL, "quillon.zephyrine", PHONE, "900461", ADDRESS, "Larkspur", NOTE, "Bramblewick"]
PERSONAL += [HUBSPOT_NAME, "Tenterden"]

SECRETS = {
    "ZOHO_NOTIFY_TOKEN": "notify-Tk7Q2v9XwLmP3sRa",
    "ZOHO_CLIENT_ID": "1000.CLIENTID8HfK2mQpWz",
    "ZOHO_CLIENT_SECRET": "zoho-secret-8HfK2mQpRt5Vb",
    "ZOHO_REFRESH_TOKEN": "1000.refresh5JtN6wYcQe2",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-access3VbR9xZeKd",
    "HUBSPOT_CLIENT_SECRET": "hubspot-signing-7LpD4sGuNh",
}
SANDBOX_FLAGS = {
    "--notify-token": "ZOHO_NOTIFY_TOKEN",
    "--zoho-client-id": "ZOHO_CLIENT_ID",
    "--zoho-client-secret": "ZOHO_CLIENT_SECRET",
    "--zoho-refresh-token": "ZOHO_REFRESH_TOKEN",
    "--hubspot-access-token": "HUBSPOT_ACCESS_TOKEN",
    "--hubspot-client-secret": "HUBSPOT_CLIENT_SECRET",
}


@dataclass
class Stack:
    sandbox: str
    receiver: str
    redis_url: str
    store: redis.Redis
    logs: Path

    def zoho_headers(self) -> dict[str, str]:
        form = {
            "grant_type": "refresh_token",
            "client_id": SECRETS["ZOHO_CLIENT_ID"],
            "client_secret": SECRETS["ZOHO_CLIENT_SECRET"],
            "refresh_token": SECRETS["ZOHO_REFRESH_TOKEN"],
        }
        token = httpx.post(f"{self.sandbox}/oauth/v2/token", data=form).json()["access_token"]
        return {"Authorization": f"Zoho-oauthtoken {token}"}

    def zoho_update(self, **fields: Any) -> None:
        body = {"data": [{"id": ZOHO_APPOINTMENT, **fields}]}
        answer = httpx.put(f"{self.sandbox}/crm/v7/Appointments__s", json=body, headers=self.zoho_headers())
        assert answer.status_code == 200, answer.text

    def history(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = httpx.get(f"{self.sandbox}/_sandbox/history").json()["data"]
        return [row for row in rows if row["Appointment_Name"]["id"] == ZOHO_APPOINTMENT]

    def notes(self) -> list[dict[str, Any]]:
        notes = httpx.get(f"{self.sandbox}/_sandbox/hubspot/notes").json()["notes"]
        return [note for note in notes if HUBSPOT_APPOINTMENT in str(note.get("associations"))]

    def post_hubspot(self, events: list[dict[str, Any]]) -> httpx.Response:
        body = orjson.dumps(events)
        timestamp = str(int(time.time() * 1000))
        uri = f"{self.receiver}/webhooks/hubspot"
        signed = b"POST" + uri.encode() + body + timestamp.encode()
        digest = hmac.new(SECRETS["HUBSPOT_CLIENT_SECRET"].encode(), signed, hashlib.sha256).digest()
        headers = {
            "content-type": "application/json",
            "x-hubspot-signature-v3": base64.b64encode(digest).decode(),
            "x-hubspot-request-timestamp": timestamp,
        }
        return httpx.post(uri, content=body, headers=headers)

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    settings = SECRETS | {"ZOHO_CHANNEL_IDS": "1000000068001", "PUBLIC_BASE_URL": receiver, "LOG_FORMAT": "json"}
    env = stack_env(redis_url, sandbox, **settings)
    flags = [item for flag, name in SANDBOX_FLAGS.items() for item in (flag, SECRETS[name])]
    hooks = ["--notify-url", f"{receiver}/webhooks/zoho", "--hubspot-webhook-url", f"{receiver}/webhooks/hubspot"]
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *hooks, *flags], env, tmp_path, tmp_path / "sandbox.out"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker.log"),
    ]
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver")
        wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), "the worker")
        yield Stack(sandbox, receiver, redis_url, store, tmp_path)
    finally:
        for process in processes:
            stop(process)


def status_output(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "crmflow", "status", *args],
        env=stack_env(stack.redis_url, stack.sandbox, LOG_FORMAT="json"),
        cwd=stack.logs,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def issued_tokens(store: redis.Redis) -> list[str]:
    """The Zoho access tokens the worker was issued and shares through Redis."""
    found = []
    for name in store.scan_iter(match=keys.zoho_token("*")):
        raw = store.get(name)
        if isinstance(raw, bytes) and raw.startswith(b"{"):
            found.append(str(json.loads(raw)["access_token"]))
    return found


def test_no_personal_value_secret_or_token_reaches_any_log(stack: Stack) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    personal = {"Appointment_Name": NAME, "Address": ADDRESS, "Additional_Information": f"Call {PHONE} or {EMAIL}"}
    stack.zoho_update(**personal, Appointment_Start_Time=start.isoformat(), Reschedule_Note=NOTE)
    wait_for(lambda: len(stack.history()) == 1, f"the history row\n{stack.logs_text()}", timeout_s=30)

    echo = {"code": "INVALID_DATA", "details": {"api_name": "Reschedule_Note"}, "status": "error"}
    echo["message"] = f"invalid data: {NAME} <{EMAIL}> {PHONE}: {NOTE}"
    fault = {"method": "POST", "path_prefix": HISTORY_PATH, "status": 400, "body": {"data": [echo]}}
    assert httpx.post(f"{stack.sandbox}/_sandbox/faults", json=[fault]).status_code == 200
    stack.zoho_update(Appointment_Start_Time=(start + timedelta(hours=2)).isoformat(), Reschedule_Note=NOTE)
    wait_for(lambda: stack.store.zcard(keys.DEADLETTER_INDEX) == 1, f"the dead letter\n{stack.logs_text()}", 30)

    moved = (start + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    change = {"properties": {"hs_appointment_name": HUBSPOT_NAME, "hs_appointment_start": moved}, "user_id": "71230003"}
    patched = httpx.patch(f"{stack.sandbox}/_sandbox/hubspot/appointments/{HUBSPOT_APPOINTMENT}", json=change)
    assert patched.status_code == 200, patched.text
    wait_for(lambda: len(stack.notes()) == 1, f"the HubSpot note\n{stack.logs_text()}", timeout_s=30)
    contact: dict[str, Any] = {"eventId": 9, "subscriptionId": 3, "portalId": 62515, "appId": 1, "attemptNumber": 0}
    contact |= {"occurredAt": int(time.time() * 1000), "subscriptionType": "object.propertyChange", "objectId": 555}
    contact |= {"objectTypeId": "0-1", "propertyName": "email", "propertyValue": EMAIL, "changeSource": "CRM_UI"}
    phone = contact | {"eventId": 10, "propertyName": "phone", "propertyValue": PHONE}
    assert stack.post_hubspot([contact, phone]).json()["ignored"] == 2
    wait_until_idle(stack.store, f"the jobs\n{stack.logs_text()}")

    shown = status_output(stack) + status_output(stack, "--json")
    tokens = issued_tokens(stack.store)
    logs = {name: (stack.logs / name).read_text() for name in ("receiver.log", "worker.log")}

    assert tokens, "the worker was issued no Zoho access token"
    assert "dead letters: 1 (INVALID_DATA 1)" in shown
    for name, text in logs.items():
        entries = [json.loads(line) for line in text.splitlines()]  # every line one JSON object
        assert entries and all({"timestamp", "level", "logger", "message"} <= set(entry) for entry in entries), name
    worker_entries = [json.loads(line) for line in logs["worker.log"].splitlines()]
    letter_lines = [e for e in worker_entries if e["message"].startswith("dead letter ")]
    assert letter_lines and all(e.get("record_id") == ZOHO_APPOINTMENT and e.get("rule") for e in letter_lines)
    assert any(e.get("record_id") == HUBSPOT_APPOINTMENT and e.get("source") == "hubspot" for e in worker_entries)
    everything = {**logs, "status": shown}
    for value in [*PERSONAL, *SECRETS.values(), *tokens]:
        leaks = [name for name, text in everything.items() if value.lower() in text.lower()]
        assert leaks == [], f"{value!r} in {leaks}"
