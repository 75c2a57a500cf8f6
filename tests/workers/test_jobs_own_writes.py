"""Own writes on a real arq worker and real Redis, both CRMs played by the in-process sandbox.

An update_record whose own write comes back as a notification does not fire again, even under a rule whose
`when.changed` names the field it writes; a person changing that field to another value still fires it; a
write whose answer was lost is neither repeated nor taken for someone else's. The notification of the write
is queued here as the receiver would queue the sandbox's callback (tests/e2e/test_record_writes.py has the
sandbox send it through a real receiver).
"""

from __future__ import annotations

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


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return str(path)


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
    rules = tmp_path / "check-and-note.yaml"
    rules.write_text(CHECK_AND_NOTE)
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, operation="insert")
    await work(redis_url, sandbox, str(rules))
    await sandbox.zoho_change(Additional_Information="Gate code 1234")
    # Zoho applies the write and its answer is lost, as when the worker is killed between the two: the job
    # fails before its note and before saving the new state. Its retry, and the job of the write's own
    # notification (whichever runs first), see the field as crmflow wrote it, for the change it was written
    # for: the rule runs again under the same ledger keys, so the write is not repeated and the note is made.
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "after": True})
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID)
    await enqueue_change(redis, "zoho", "Appointments__s", ZOHO_ID, changed_fields=("Additional_Information",))

    await work(redis_url, sandbox, str(rules))

    assert await sandbox.zoho_field("Additional_Information") == "Gate code 1234 (checked)"
    assert await sandbox.count(PUT) == 1
    notes = (await sandbox.http.get("/_sandbox/notes")).json()["data"]
    assert [note["Note_Content"].split("\n")[0] for note in notes] == ["Now: Gate code 1234 (checked)"]
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
