"""notify through a real worker (burst mode, real Redis, the in-process Zoho sandbox) to a real local endpoint.

The endpoint is a real HTTP server on loopback (sandbox/notify_endpoint.py): every delivery goes over the wire
through the worker's own notify client, signed, and the standardwebhooks package checks the signatures.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from standardwebhooks import Webhook

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from sandbox.notify_endpoint import Answer, NotifyEndpoint
from tests.processes import REPO
from tests.workers.harness import enqueue_change, job_result, run_worker
from tests.workers.test_jobs import NEVER_RESCHEDULED, Zoho, soon
from tests.workers.test_jobs_hubspot import NEVER_RESCHEDULED as HUBSPOT_APPOINTMENT
from tests.workers.test_jobs_hubspot import HubSpot
from workers import keys
from workers.contract import ChangeEvent
from workers.deadletters import DeadLetters
from workers.ledger import Ledger
from workers.replay import replay_letter

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
ENV = {"CRMFLOW_TEST_NOTIFY_SECRET": SECRET}
PATH = "/hooks/moves"
TEXT = "{{ record.Appointment_Name }} moved to {{ reschedule.new_start }} ({{ reschedule.notice_hours | round(1) }} h)"


def rules_file(tmp_path: Path, url: str, *, secret_env: str = "CRMFLOW_TEST_NOTIFY_SECRET") -> Path:
    """The default rules, then a rule notifying `url` of every Zoho reschedule."""
    path = tmp_path / "rules.yaml"
    default = (REPO / "rules" / "default.yaml").read_text()
    path.write_text(
        default
        + f"""
  - name: tell-the-team
    source: zoho
    module: Appointments__s
    when: {{changed: [Appointment_Start_Time]}}
    actions:
      - type: notify
        with:
          url: {url}
          secret_env: {secret_env}
          text: "{TEXT}"
"""
    )
    return path


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


@pytest.fixture
def endpoint() -> Iterator[NotifyEndpoint]:
    with NotifyEndpoint(SECRET) as serving:
        yield serving


async def ledger_entries(redis: ArqRedis) -> list[dict[str, Any]]:
    ledger = Ledger(redis)
    found = [await ledger.get(key.decode()) async for key in redis.scan_iter(match=keys.ledger("*"))]
    return [entry for entry in found if entry is not None]


class HubSpotSandbox:
    """The in-process sandbox, driven as HubSpot."""

    async def __aenter__(self) -> HubSpot:
        app = create_sandbox(SandboxConfig())
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")
        return HubSpot(self._http)

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()


class Flow:
    """One appointment of the sandbox, seen once by crmflow, then rescheduled; a worker runs with the rules."""

    def __init__(self, redis: ArqRedis, redis_url: str, zoho: Zoho, rules: Path) -> None:
        self.redis = redis
        self.redis_url = redis_url
        self.zoho = zoho
        self.rules = rules

    async def work(self, environ: dict[str, str] | None = None) -> None:
        await run_worker(
            self.redis_url, self.zoho.http, RULES_PATH=str(self.rules), environ=ENV if environ is None else environ
        )

    async def reschedule(self, start: datetime, environ: dict[str, str] | None = None) -> ChangeEvent:
        await enqueue_change(self.redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, operation="insert")
        await self.work(environ)
        await self.zoho.reschedule(NEVER_RESCHEDULED, start, Reschedule_Reason="By Customer")
        event = await enqueue_change(self.redis, "zoho", "Appointments__s", NEVER_RESCHEDULED)
        await self.work(environ)
        return event

    async def notify_outcome(self, event: ChangeEvent) -> dict[str, Any]:
        result = await job_result(self.redis, event)
        (outcome,) = [a for a in result["actions"] if a["action"] == "notify"]
        return dict(outcome)


def flow(redis: ArqRedis, redis_url: str, zoho: Zoho, tmp_path: Path, url: str, **kwargs: Any) -> Flow:
    return Flow(redis, redis_url, zoho, rules_file(tmp_path, url, **kwargs))


async def test_a_reschedule_is_posted_once_signed_with_the_change(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")
    before = await zoho.appointment(NEVER_RESCHEDULED)

    event = await moves.reschedule(soon(5))

    (received,) = endpoint.received(PATH)
    body = Webhook(SECRET).verify(received.body, dict(received.headers))
    after = await zoho.appointment(NEVER_RESCHEDULED)
    assert body == {
        "type": "crmflow.change",
        "source": "zoho",
        "module": "Appointments__s",
        "record_id": NEVER_RESCHEDULED,
        "operation": "update",
        "rule": "tell-the-team",
        "modified_time": datetime.fromisoformat(after["Modified_Time"]).isoformat(),
        "changed": {
            "Appointment_Start_Time": {"old": before["Appointment_Start_Time"], "new": after["Appointment_Start_Time"]},
            "Reschedule_Count": {"old": before["Reschedule_Count"], "new": after["Reschedule_Count"]},
        },
        "reschedule": {
            "old_start": datetime.fromisoformat(before["Appointment_Start_Time"]).isoformat(),
            "new_start": datetime.fromisoformat(after["Appointment_Start_Time"]).isoformat(),
            "notice_hours": body["reschedule"]["notice_hours"],
        },
        "text": body["text"],
    }
    assert isinstance(body["reschedule"]["notice_hours"], float)
    assert body["text"].startswith(f"AC Repair - James moved to {body['reschedule']['new_start']} (")
    outcome = await moves.notify_outcome(event)
    assert outcome["status"] == "delivered" and outcome["detail"] == received.headers["webhook-id"]
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1  # the default rule's history row, beside it


async def test_a_500_then_a_200_send_the_same_webhook_id(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    endpoint.answer(PATH, Answer(500, body=b"try later"))
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")

    event = await moves.reschedule(soon(6))

    first, second = endpoint.received(PATH)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert first.verified and second.verified
    assert (await moves.notify_outcome(event))["status"] == "delivered"
    assert (await job_result(redis, event))["status"] == "processed"
    assert await DeadLetters(redis).all() == []


async def test_a_400_is_final_a_dead_letter_and_not_sent_again(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    endpoint.answer(PATH, Answer(400, body=b'{"error":"invalid_payload"}'))
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")

    event = await moves.reschedule(soon(7))

    assert len(endpoint.received(PATH)) == 1
    assert (await moves.notify_outcome(event))["status"] == "dead_lettered"
    (letter,) = await DeadLetters(redis).all()
    assert (letter.rule, letter.action, letter.error_code) == ("tell-the-team", "notify", "HTTP_400")
    assert letter.error_class == "NotifyRejectedError"
    assert "127.0.0.1" in letter.message and "invalid_payload" in letter.message and PATH not in letter.message
    assert letter.action_replay is not None  # `crmflow dlq replay` can send it again
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1  # the other rule's action is untouched


async def test_a_replayed_notify_letter_sends_the_same_delivery_again(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    endpoint.answer(PATH, Answer(404))
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")
    await moves.reschedule(soon(7, hour=15))
    store = DeadLetters(redis)
    (letter,) = await store.all()

    # The endpoint is fixed; the operator replays the letter (crmflow dlq replay): just the notify runs again.
    await replay_letter(redis, store, letter, stamp_ms=int(time.time() * 1000))
    await moves.work()

    refused, replayed = endpoint.received(PATH)
    assert replayed.verified
    assert replayed.headers["webhook-id"] == refused.headers["webhook-id"]
    assert replayed.json() == refused.json()
    assert replayed.json()["text"].startswith("AC Repair - James moved to ")
    assert await store.all() == []
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1


async def test_a_redirect_is_not_followed_and_becomes_a_dead_letter(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    endpoint.answer(PATH, Answer(302, headers={"location": f"{endpoint.url}/stolen"}))
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")

    await moves.reschedule(soon(8))

    assert len(endpoint.received(PATH)) == 1
    assert endpoint.received("/stolen") == []
    (letter,) = await DeadLetters(redis).all()
    assert letter.error_code == "HTTP_302" and "does not follow redirects" in letter.message


async def test_an_endpoint_down_for_good_is_retried_then_dead_lettered(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    endpoint.answer(PATH, *[Answer(503)] * 4)  # every try of the job (WORKER_MAX_TRIES 4 in the harness)
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")

    event = await moves.reschedule(soon(9))

    attempts = endpoint.received(PATH)
    assert len(attempts) == 4  # WORKER_MAX_TRIES in the harness
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    store = DeadLetters(redis)
    (letter,) = await store.all()
    # The action's own letter: on the job's last try the endpoint's failure stops this action only, so the job
    # ends and the record's snapshot moves on (a later change of it is not held up by this endpoint).
    assert (letter.rule, letter.action) == ("tell-the-team", "notify")
    assert letter.error_code == "HTTP_503" and "gave up after 4 tries" in letter.message
    assert (await moves.notify_outcome(event))["status"] == "dead_lettered"
    assert (await job_result(moves.redis, event))["status"] == "processed"
    # The delivery stays pending in the ledger, and replaying the letter runs the action again, which sends that
    # very delivery under the same webhook-id.
    (pending,) = [entry for entry in await ledger_entries(redis) if entry["state"] == "pending"]
    assert pending["effect"]["webhook_id"] == attempts[0].headers["webhook-id"]
    await replay_letter(redis, store, letter, stamp_ms=int(time.time() * 1000))
    await moves.work()
    replayed = endpoint.received(PATH)[-1]
    assert len(endpoint.received(PATH)) == 5 and replayed.verified
    assert replayed.headers["webhook-id"] == attempts[0].headers["webhook-id"]
    assert replayed.body == attempts[0].body
    assert await store.all() == []


async def test_a_missing_secret_is_a_dead_letter_naming_the_variable(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}", secret_env="CRMFLOW_UNSET_SECRET")

    await moves.reschedule(soon(10))

    assert endpoint.received() == []
    (letter,) = await DeadLetters(redis).all()
    assert letter.error_code == "NOTIFY_SECRET"
    assert letter.message == "secret_env CRMFLOW_UNSET_SECRET: the environment variable is not set (or is empty)"
    assert letter.ledger_keys == ()  # nothing was kept to send


async def test_a_second_notification_of_the_same_change_sends_nothing(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")
    await moves.reschedule(soon(11))

    await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED)
    await moves.work()

    assert len(endpoint.received(PATH)) == 1


async def test_the_delivery_leaves_no_snapshot_behind_it_when_killed_after(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    # The record's snapshot is dropped as if the worker died after the POST and before saving the new state:
    # the next job sees the same change again, and the ledger keeps the endpoint from getting it twice.
    moves = flow(redis, redis_url, zoho, tmp_path, f"{endpoint.url}{PATH}")
    await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, operation="insert")
    await moves.work()
    snapshot = await redis.get(keys.snapshot("zoho", "Appointments__s", NEVER_RESCHEDULED))
    await zoho.reschedule(NEVER_RESCHEDULED, soon(12))
    await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED)
    await moves.work()
    assert snapshot is not None
    await redis.set(keys.snapshot("zoho", "Appointments__s", NEVER_RESCHEDULED), snapshot)

    again = await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED)
    await moves.work()

    assert len(endpoint.received(PATH)) == 1
    assert (await moves.notify_outcome(again))["status"] == "already_logged"


async def test_a_hubspot_reschedule_is_posted_too(
    redis: ArqRedis, redis_url: str, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    rules = tmp_path / "hubspot.yaml"
    rules.write_text(
        f"""
version: 1
rules:
  - name: hubspot-moves
    source: hubspot
    module: appointments
    when: {{changed: [hs_appointment_start]}}
    actions:
      - type: notify
        with: {{url: "{endpoint.url}{PATH}", text: "{{{{ record.hs_appointment_name }}}} moved"}}
"""
    )
    async with HubSpotSandbox() as hubspot:
        await enqueue_change(redis, "hubspot", "appointments", HUBSPOT_APPOINTMENT, operation="insert")
        await run_worker(redis_url, hubspot.http, RULES_PATH=str(rules))
        await hubspot.reschedule(HUBSPOT_APPOINTMENT, soon(5))
        await enqueue_change(
            redis, "hubspot", "appointments", HUBSPOT_APPOINTMENT, changed_fields=("hs_appointment_start",)
        )
        await run_worker(redis_url, hubspot.http, RULES_PATH=str(rules))

    (received,) = endpoint.received(PATH)
    body = received.json()
    # No secret_env: unsigned, but with its webhook-id and timestamp.
    assert "webhook-signature" not in received.headers and received.headers["webhook-id"].startswith("msg_")
    assert (body["source"], body["module"], body["record_id"]) == ("hubspot", "appointments", HUBSPOT_APPOINTMENT)
    assert set(body["reschedule"]) == {"old_start", "new_start", "notice_hours"}
    assert body["text"] == "AC Repair - James moved"


async def test_a_delete_is_posted_with_what_the_record_was(
    redis: ArqRedis, redis_url: str, zoho: Zoho, endpoint: NotifyEndpoint, tmp_path: Path
) -> None:
    rules = tmp_path / "deletes.yaml"
    rules.write_text(
        f"""
version: 1
rules:
  - name: tell-about-deletes
    source: zoho
    module: Appointments__s
    when: {{operation: [delete]}}
    actions:
      - type: notify
        with: {{url: "{endpoint.url}{PATH}", text: "{{{{ previous.Appointment_Start_Time }}}} is off"}}
"""
    )
    moves = Flow(redis, redis_url, zoho, rules)
    await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, operation="insert")
    await moves.work()
    start = (await zoho.appointment(NEVER_RESCHEDULED))["Appointment_Start_Time"]

    deleted = await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, operation="delete")
    await moves.work()
    await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, operation="delete")
    await moves.work()

    (received,) = endpoint.received(PATH)
    body = received.json()
    assert (body["operation"], body["record_id"]) == ("delete", NEVER_RESCHEDULED)
    assert body["changed"]["Appointment_Start_Time"] == {"old": start, "new": None}
    assert "reschedule" not in body
    assert body["text"] == f"{start} is off"
    assert (await moves.notify_outcome(deleted))["status"] == "delivered"
