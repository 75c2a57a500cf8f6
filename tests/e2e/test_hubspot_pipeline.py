"""HubSpot through every process: the sandbox's signed batch → receiver → Redis → worker → a note in the sandbox."""

from __future__ import annotations

import base64
import hashlib
import hmac
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
from tests.processes import answers, hubspot_retries_done, stack_env, start, stop, wait_for, wait_until_idle
from workers.contract import QUEUE_NAME

APPOINTMENT = "51204030001"  # the sandbox's "AC Repair - James"
SECRET = "sandbox-hubspot-client-secret"
CHLOE = "71230003"


@dataclass
class Stack:
    sandbox: str
    receiver: str
    store: redis.Redis
    logs: Path

    def notes(self) -> list[dict[str, Any]]:
        notes = httpx.get(f"{self.sandbox}/_sandbox/hubspot/notes").json()["notes"]
        return [note for note in notes if APPOINTMENT in str(note.get("associations"))]

    def deliveries(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = httpx.get(f"{self.sandbox}/_sandbox/hubspot/webhooks").json()["deliveries"]
        return log

    def post(self, events: list[dict[str, Any]], *, secret: str = SECRET) -> httpx.Response:
        """Deliver a batch signed the way HubSpot documents it (computed here, not by crmflow's code)."""
        body = orjson.dumps(events)
        timestamp = str(int(time.time() * 1000))
        uri = f"{self.receiver}/webhooks/hubspot"
        digest = hmac.new(secret.encode(), b"POST" + uri.encode() + body + timestamp.encode(), hashlib.sha256)
        headers = {
            "content-type": "application/json",
            "x-hubspot-signature-v3": base64.b64encode(digest.digest()).decode(),
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
    env = stack_env(redis_url, sandbox, HUBSPOT_CLIENT_SECRET=SECRET, PUBLIC_BASE_URL=receiver)
    hooks = ["--hubspot-webhook-url", f"{receiver}/webhooks/hubspot"]
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *hooks], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker.log"),
    ]
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history"), "the sandbox")
        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver")
        wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), "the worker")
        yield Stack(sandbox, receiver, store, tmp_path)
    finally:
        for process in processes:
            stop(process)


def test_a_batch_delivered_twice_out_of_order_with_another_event_makes_one_note(stack: Stack) -> None:
    new_start = (datetime.now(UTC) + timedelta(days=4)).replace(hour=15, minute=0, second=0, microsecond=0)
    headers = {"Authorization": "Bearer sandbox-hubspot-token"}
    url = f"{stack.sandbox}/crm/objects/2026-03/appointments/{APPOINTMENT}?properties=hs_appointment_start"
    old_start = datetime.fromisoformat(httpx.get(url, headers=headers).json()["properties"]["hs_appointment_start"])

    # A user reschedules the appointment in HubSpot; HubSpot sends its signed batch.
    change = {"properties": {"hs_appointment_start": new_start.isoformat()}, "user_id": CHLOE}
    assert httpx.patch(f"{stack.sandbox}/_sandbox/hubspot/appointments/{APPOINTMENT}", json=change).status_code == 200
    wait_for(lambda: len(stack.notes()) == 1, f"the note\n{stack.logs_text()}")
    (delivery,) = [d for d in stack.deliveries() if d.get("status_code") == 200]
    events = delivery["body"]

    # The same events again: reordered, with an unrelated contact event, twice; and HubSpot's own redelivery.
    contact = dict(events[0], objectTypeId="0-1", objectId=555, propertyName="email", propertyValue="x@example.com")
    replays = [stack.post([contact, *reversed(events)]) for _ in range(2)]
    redelivered = httpx.post(f"{stack.sandbox}/_sandbox/hubspot/webhooks/{delivery['seq']}/redeliver")
    # The replays and the redelivery (the control API answers once the receiver has) are all in.
    wait_until_idle(
        stack.store, f"the replays' jobs\n{stack.logs_text()}", also=lambda: hubspot_retries_done(stack.deliveries())
    )

    assert [r.status_code for r in replays] == [200, 200]
    assert [r.json()["queued"] for r in replays] == [0, 0]
    assert [r.json()["ignored"] for r in replays] == [1, 1]
    assert redelivered.json()["status_code"] == 200
    (note,) = stack.notes()
    assert note["properties"]["hs_note_body"] == (
        f"AC Repair - James was rescheduled from {old_start:%Y-%m-%d %H:%M} UTC to {new_start:%Y-%m-%d %H:%M} UTC.\n"
        f"Changed by HubSpot user {CHLOE} (CRM_UI)."
    )


def test_a_badly_signed_batch_is_401_and_makes_no_job(stack: Stack) -> None:
    event = {
        "eventId": 1,
        "subscriptionId": 3,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(time.time() * 1000),
        "subscriptionType": "object.propertyChange",
        "attemptNumber": 0,
        "objectId": int(APPOINTMENT),
        "objectTypeId": "0-421",
        "propertyName": "hs_appointment_start",
        "propertyValue": "2030-01-01T09:00:00.000Z",
    }

    answer = stack.post([event], secret="not-the-client-secret")

    assert answer.status_code == 401
    assert answer.json() == {"error": "unauthenticated", "detail": "X-HubSpot-Signature-v3 does not match"}
    assert stack.store.zcard(QUEUE_NAME) == 0
    assert not stack.store.keys("arq:result:hubspot:*")
