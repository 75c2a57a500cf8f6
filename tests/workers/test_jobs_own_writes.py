"""Own writes on a real arq worker and real Redis, both CRMs played by the in-process sandbox.

An update_record whose own write comes back as a notification does not fire again, even under a rule whose
`when.changed` names the field it writes; a person changing that field to another value still fires it; a
write whose answer was lost is neither repeated nor taken for someone else's. The notification of the write
is queued here as the receiver would queue the sandbox's callback (tests/e2e/test_record_writes.py has the
sandbox send it through a real receiver).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change, job_result, run_worker
from workers import keys

ZOHO_ID = "5545974000002555001"  # "AC Repair - James", Scheduled
HUBSPOT_ID = "51204030001"
PUT = "PUT /crm/v7/Appointments__s/{id}"
PATCH = "PATCH /crm/objects/2026-03/appointments/{id}"
RULES = """
version: 1
rules:
  - name: check-access-notes
    source: zoho
    module: Appointments__s
    when: {changed: [Additional_Information]}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "{{ record.Additional_Information }} (checked)"
  - name: no-show-means-cancelled
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    actions:
      - type: update_record
        with:
          fields:
            hs_appointment_status: CANCELED
"""


class Sandbox:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def zoho_change(self, **fields: Any) -> None:
        response = await self.http.patch(f"/_sandbox/appointments/{ZOHO_ID}", json=fields)
        assert response.status_code == 200, response.text

    async def hubspot_change(self, **properties: Any) -> None:
        change = {"properties": properties, "user_id": "71230003"}
        response = await self.http.patch(f"/_sandbox/hubspot/appointments/{HUBSPOT_ID}", json=change)
        assert response.status_code == 200, response.text

    async def zoho_field(self, name: str) -> Any:
        token = (await self.http.post("/oauth/v2/token", data=SandboxConfig().refresh_form())).json()["access_token"]
        headers = {"Authorization": f"Zoho-oauthtoken {token}"}
        return (await self.http.get(f"/crm/v7/Appointments__s/{ZOHO_ID}", headers=headers)).json()["data"][0][name]

    async def count(self, endpoint: str) -> int:
        counts: dict[str, int] = (await self.http.get("/_sandbox/requests")).json()["by_endpoint"]
        return counts.get(endpoint, 0)

    async def faults(self, *rules: dict[str, Any]) -> None:
        assert (await self.http.post("/_sandbox/faults", json=list(rules))).status_code == 200


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Sandbox(http)


def _rules(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return str(path)


@pytest.fixture
def rules(tmp_path: Path) -> str:
    return _rules(tmp_path, RULES)


async def work(redis_url: str, sandbox: Sandbox, rules: str) -> None:
    await run_worker(redis_url, sandbox.http, RULES_PATH=rules)


async def test_zohos_notification_of_crmflows_own_write_fires_no_rule(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, rules: str
) -> None:
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, operation="insert")
    await work(redis_url, sandbox, rules)
    await sandbox.zoho_change(Additional_Information="Gate code 1234")
    human = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await work(redis_url, sandbox, rules)

    own = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, changed_fields=("Additional_Information",))
    await work(redis_url, sandbox, rules)

    assert [a["status"] for a in (await job_result(redis, human))["actions"]] == ["created"]
    echo = await job_result(redis, own)
    assert (echo["actions"], echo["changed"], echo["own_writes"]) == ([], [], ["Additional_Information"])
    assert await sandbox.zoho_field("Additional_Information") == "Gate code 1234 (checked)"
    assert await sandbox.count(PUT) == 1
    assert len(await redis.keys(keys.ledger("*"))) == 1
    assert not await redis.exists(keys.own_writes("zoho", "Appointments__s", ZOHO_ID))  # consumed

    await sandbox.zoho_change(Additional_Information="Gate code 9999")
    again = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await work(redis_url, sandbox, rules)

    assert [a["status"] for a in (await job_result(redis, again))["actions"]] == ["created"]
    assert await sandbox.zoho_field("Additional_Information") == "Gate code 9999 (checked)"


CHECK_AND_NOTE = """
version: 1
rules:
  - name: check-access-notes
    source: zoho
    module: Appointments__s
    when: {changed: [Additional_Information]}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "{{ record.Additional_Information }} (checked)"
      - type: add_note
        with:
          title: Access notes checked
          content: "Now: {{ record.Additional_Information }}"
"""


async def test_a_lost_answer_is_written_once_and_the_rules_other_actions_still_run(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, CHECK_AND_NOTE)
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, operation="insert")
    await work(redis_url, sandbox, rules)
    await sandbox.zoho_change(Additional_Information="Gate code 1234")
    # Zoho applies the write and its answer is lost, as when the worker is killed between the two: the job
    # fails before its note and before saving the new state. Its retry, and the job of the write's own
    # notification (whichever runs first), see the field as crmflow wrote it, for the change it was written
    # for: the rule runs again under the same ledger keys, so the write is not repeated and the note is made,
    # rendered as on the first try (which would have read the field before the write: "Gate code 1234").
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "after": True})
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, changed_fields=("Additional_Information",))

    await work(redis_url, sandbox, rules)

    assert await sandbox.zoho_field("Additional_Information") == "Gate code 1234 (checked)"
    assert await sandbox.count(PUT) == 1
    notes = (await sandbox.http.get("/_sandbox/notes")).json()["data"]
    assert [note["Note_Content"].split("\n")[0] for note in notes] == ["Now: Gate code 1234"]
    assert not await redis.exists(keys.own_writes("zoho", "Appointments__s", ZOHO_ID))


async def test_hubspots_webhook_of_crmflows_own_write_fires_no_rule(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, rules: str
) -> None:
    await enqueue_change(redis, "hubspot", "appointments", HUBSPOT_ID, operation="insert")
    await work(redis_url, sandbox, rules)
    await sandbox.hubspot_change(hs_appointment_status="NO_SHOW")
    human = await enqueue_change(redis, "hubspot", "appointments", HUBSPOT_ID)
    await work(redis_url, sandbox, rules)

    own = await enqueue_change(redis, "hubspot", "appointments", HUBSPOT_ID)
    await work(redis_url, sandbox, rules)

    assert [a["status"] for a in (await job_result(redis, human))["actions"]] == ["created"]
    echo = await job_result(redis, own)
    assert (echo["actions"], echo["own_writes"]) == ([], ["hs_appointment_status"])
    assert await sandbox.count(PATCH) == 1
    assert len(await redis.keys(keys.ledger("*"))) == 1


async def _notes(sandbox: Sandbox) -> list[str]:
    notes = (await sandbox.http.get("/_sandbox/notes")).json()["data"]
    return [note["Note_Content"].split("\n")[0] for note in notes]


async def _renamed_by_a_person(redis: ArqRedis, redis_url: str, sandbox: Sandbox, rules: str) -> None:
    """The record seen once (its snapshot saved), then renamed by a person."""
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, operation="insert")
    await work(redis_url, sandbox, rules)
    await sandbox.zoho_change(Appointment_Name="Renamed by a person")


STAMP_ON_ANY_UPDATE = """
version: 1
rules:
  - name: stamp-on-any-update
    source: zoho
    module: Appointments__s
    when: {operation: update}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "stamped"
      - type: add_note
        with:
          title: Updated
          content: "updated"
"""


async def test_a_rule_on_the_operation_alone_does_not_fire_on_crmflows_own_write(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, STAMP_ON_ANY_UPDATE)
    await _renamed_by_a_person(redis, redis_url, sandbox, rules)
    human = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await work(redis_url, sandbox, rules)

    own = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, changed_fields=("Additional_Information",))
    await work(redis_url, sandbox, rules)

    assert [a["status"] for a in (await job_result(redis, human))["actions"]] == ["created", "created"]
    echo = await job_result(redis, own)
    # Modified_Time and Modified_By moved with the write (the CRM's system fields) and went with it.
    assert (echo["actions"], echo["changed"], echo["own_writes"]) == ([], [], ["Additional_Information"])
    assert (await _notes(sandbox), await sandbox.count(PUT)) == (["updated"], 1)


STAMP_MODIFIED_TIME = """
version: 1
rules:
  - name: sync-stamp
    source: zoho
    module: Appointments__s
    when: {operation: update}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "synced at {{ record.Modified_Time }}"
"""


async def test_a_rule_stamping_the_modified_time_on_every_update_does_not_loop(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, STAMP_MODIFIED_TIME)
    await _renamed_by_a_person(redis, redis_url, sandbox, rules)
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await work(redis_url, sandbox, rules)

    # Zoho's Modified_Time has whole seconds: a second later, a rule firing on the echo would stamp a new value.
    await asyncio.sleep(1.1)
    echo = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, changed_fields=("Additional_Information",))
    await work(redis_url, sandbox, rules)

    result = await job_result(redis, echo)
    assert (result["actions"], result["changed"], result["own_writes"]) == ([], [], ["Additional_Information"])
    assert await sandbox.count(PUT) == 1


STAMP_AND_NOTE_INFO = """
version: 1
rules:
  - name: stamp-renames
    source: zoho
    module: Appointments__s
    when: {changed: [Appointment_Name]}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "renamed"
  - name: note-info-changes
    source: zoho
    module: Appointments__s
    when: {changed: [Additional_Information]}
    actions:
      - type: add_note
        with:
          title: Info changed
          content: "{{ record.Additional_Information }}"
"""


async def test_a_retry_after_crmflows_write_fires_no_other_rule_on_it(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, STAMP_AND_NOTE_INFO)
    await _renamed_by_a_person(redis, redis_url, sandbox, rules)
    # The PUT is applied and its answer lost: the job's retry, and the write's own notification, see the rename
    # again, with the field crmflow wrote as it was before the write.
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "after": True})
    human = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, changed_fields=("Additional_Information",))

    await work(redis_url, sandbox, rules)

    result = await job_result(redis, human)
    assert (result["changed"], result["actions"][0]["status"]) == (["Appointment_Name"], "found_in_crm")
    assert len(result["actions"]) == 1
    assert (await _notes(sandbox), await sandbox.count(PUT)) == ([], 1)
    assert await sandbox.zoho_field("Additional_Information") == "renamed"


async def test_a_retry_leaves_a_persons_newer_value_of_the_field_it_was_writing(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, STAMP_AND_NOTE_INFO)
    await _renamed_by_a_person(redis, redis_url, sandbox, rules)
    # The PUT fails (not applied, but a 5xx may have been): the job is retried; meanwhile Bob writes the field.
    # The failing PUT is slow, so the worker stops picking jobs while it is under way (its own write is noted
    # before the PUT): the retry cannot run before Bob's write, however short its backoff.
    put_fault = {"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "times": 1}
    await sandbox.faults(put_fault | {"delay_ms": 300})
    human = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)

    async def put_under_way() -> bool:
        return bool(await redis.exists(f"crmflow:own-writes:zoho:Appointments__s:{ZOHO_ID}"))

    await run_worker(redis_url, sandbox.http, until=put_under_way, RULES_PATH=rules)
    assert await sandbox.count(PUT) == 1  # the failed one, and no retry yet
    await sandbox.zoho_change(Additional_Information="Bob's")
    await work(redis_url, sandbox, rules)

    result = await job_result(redis, human)
    assert result["changed"] == ["Additional_Information", "Appointment_Name"]
    assert [(a["rule"], a["status"]) for a in result["actions"]] == [
        ("stamp-renames", "superseded"),
        ("note-info-changes", "created"),  # Bob's change, not crmflow's
    ]
    assert await sandbox.zoho_field("Additional_Information") == "Bob's"
    assert (await _notes(sandbox), await sandbox.count(PUT)) == (["Bob's"], 1)


WELCOME = """
version: 1
rules:
  - name: welcome
    source: zoho
    module: Appointments__s
    when: {operation: insert}
    actions:
      - type: add_note
        with:
          title: New
          content: "new appointment"
      - type: update_record
        with:
          fields:
            Additional_Information: "welcomed"
      - type: add_note
        with:
          title: Welcomed
          content: "Info was: {{ record.Additional_Information }}"
"""


async def test_a_retry_of_a_first_seen_change_after_crmflows_write_repeats_nothing(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    rules = _rules(tmp_path, WELCOME)
    await sandbox.zoho_change(Additional_Information="Gate code 1234")
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "after": True})
    inserted = await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, operation="insert")

    await work(redis_url, sandbox, rules)

    result = await job_result(redis, inserted)
    assert [a["status"] for a in result["actions"]] == ["already_logged", "found_in_crm", "created"]
    # The retry's template read the field as the first try would have: before crmflow's write.
    assert (await _notes(sandbox), await sandbox.count(PUT)) == (["new appointment", "Info was: Gate code 1234"], 1)
