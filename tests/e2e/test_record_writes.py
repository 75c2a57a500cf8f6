"""update_record and add_note through every process: sandbox (both CRMs) → receiver → Redis → worker → sandbox.

The sandbox notifies crmflow's own writes as it notifies any other (Zoho's callback, HubSpot's signed batch),
so these tests also show that an update_record whose write comes back as a notification does not fire again:
once the stack has settled, exactly one write and one ledger entry per change a person made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.conftest import enqueue
from tests.processes import hubspot_retries_done, logs_text, sandbox_auth, start_stack, wait_for, wait_until_idle
from workers import keys
from workers.contract import ChangeEvent

ZOHO_ID = "5545974000002555001"  # "AC Repair - James", Scheduled
HUBSPOT_ID = "51204030001"  # "AC Repair - James", SCHEDULED
HUBSPOT_OTHER = "51204030002"  # "Boiler Service - Maria", SCHEDULED
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
  - name: note-zoho-cancellations
    source: zoho
    module: Appointments__s
    when: {changed: [Status]}
    conditions:
      - {field: Status, equals: Cancelled}
    actions:
      - type: add_note
        with:
          title: Cancelled
          content: "{{ record.Appointment_Name }} was {{ previous.Status }}."
  - name: no-show-means-cancelled
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    conditions:
      - {field: hs_appointment_status, equals: NO_SHOW}
    actions:
      - type: update_record
        with:
          fields:
            hs_appointment_status: CANCELED
  - name: note-hubspot-cancellations
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    conditions:
      - {field: hs_appointment_status, equals: CANCELED}
      - {previous: hs_appointment_status, not_equals: CANCELED}
    actions:
      - type: add_note
        with:
          title: Cancelled
          content: "It was {{ previous.hs_appointment_status }}."
"""


@dataclass
class Stack:
    sandbox: str
    store: redis.Redis
    logs: Path

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.sandbox}{path}", timeout=5).json()

    def zoho_change(self, **fields: Any) -> None:
        response = httpx.patch(f"{self.sandbox}/_sandbox/appointments/{ZOHO_ID}", json=fields, timeout=5)
        assert response.status_code == 200, response.text

    def hubspot_change(self, record_id: str = HUBSPOT_ID, **properties: Any) -> None:
        change = {"properties": properties, "user_id": "71230003"}
        response = httpx.patch(f"{self.sandbox}/_sandbox/hubspot/appointments/{record_id}", json=change, timeout=5)
        assert response.status_code == 200, response.text

    def hubspot_notes(self, record_id: str) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = self.get("/_sandbox/hubspot/notes")["notes"]
        return [note for note in notes if record_id in str(note["associations"])]

    def baseline(self) -> None:
        """crmflow has seen every appointment of the tests once (a snapshot each), as a sweep would have it."""
        ids = [
            ("zoho", "Appointments__s", ZOHO_ID),
            *(("hubspot", "appointments", i) for i in (HUBSPOT_ID, HUBSPOT_OTHER)),
        ]
        for source, module, record_id in ids:
            fields = {"source": source, "module": module, "record_id": record_id, "operation": "insert"}
            enqueue(self.store, ChangeEvent.model_validate(fields | {"notified_at_ms": 1}))
        wait_until_idle(self.store, f"the baseline\n{self.logs_text()}")

    def zoho_record(self) -> dict[str, Any]:
        with httpx.Client(base_url=self.sandbox, timeout=5) as zoho:
            body = zoho.get(f"/crm/v7/Appointments__s/{ZOHO_ID}", headers=sandbox_auth(zoho)).json()
        record: dict[str, Any] = body["data"][0]
        return record

    def writes(self, endpoint: str) -> int:
        counts: dict[str, int] = self.get("/_sandbox/requests")["by_endpoint"]
        return counts.get(endpoint, 0)

    def zoho_callbacks_answered(self, field: str, value: str) -> bool:
        """Whether the receiver answered the sandbox's callback that carries `field` = `value` (it answers once
        the job is queued)."""
        for delivery in self.get("/_sandbox/notifications")["deliveries"]:
            changed = delivery["body"].get("affected_values", [])
            if any(item["values"].get(field) == value for item in changed) and delivery["status_code"] == 200:
                return True
        return False

    def hubspot_settled(self, value: str) -> bool:
        """Whether HubSpot's batches are all delivered, one of them with crmflow's change of the status."""
        log = self.get("/_sandbox/hubspot/webhooks")["deliveries"]
        sent = [event for entry in log for event in entry["body"]]
        ours = any(e.get("propertyValue") == value and e.get("changeSource") == "INTEGRATION" for e in sent)
        return ours and hubspot_retries_done(log)

    def ledger_entries(self) -> int:
        entries: list[bytes] = self.store.keys(keys.ledger("*"))  # type: ignore[assignment]
        return len(entries)

    def logs_text(self) -> str:
        return logs_text(self.logs)


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path, redis_url, RULES)
    try:
        ready = Stack(running.sandbox, running.store, tmp_path)
        ready.baseline()
        yield ready
    finally:
        running.stop()


def test_zoho_update_record_whose_own_write_comes_back_does_not_fire_again(stack: Stack) -> None:
    stack.zoho_change(Additional_Information="Gate code 1234")

    checked = "Gate code 1234 (checked)"
    wait_for(
        lambda: stack.zoho_callbacks_answered("Additional_Information", checked), f"the write\n{stack.logs_text()}"
    )
    wait_until_idle(stack.store, f"the write's own notification\n{stack.logs_text()}")

    assert stack.zoho_record()["Additional_Information"] == checked
    assert stack.writes(PUT) == 1
    assert stack.ledger_entries() == 1


def test_zoho_add_note_on_a_cancellation(stack: Stack) -> None:
    stack.zoho_change(Status="Cancelled", Cancellation_Reason="By Customer")

    wait_for(lambda: stack.get("/_sandbox/notes")["count"] == 1, f"the note\n{stack.logs_text()}")
    wait_until_idle(stack.store, f"the workers\n{stack.logs_text()}")

    [note] = stack.get("/_sandbox/notes")["data"]
    assert note["Parent_Id"]["id"] == ZOHO_ID and note["Note_Title"] == "Cancelled"
    assert note["Note_Content"].startswith("AC Repair - James was Scheduled.\n\n[crmflow ")
    assert stack.writes("POST /crm/v7/Notes") == 1


def test_hubspot_update_record_whose_own_write_comes_back_does_not_fire_again(stack: Stack) -> None:
    stack.hubspot_change(hs_appointment_status="NO_SHOW")

    settled = lambda: stack.hubspot_settled("CANCELED")  # noqa: E731
    wait_for(settled, f"crmflow's status change\n{stack.logs_text()}")
    wait_until_idle(stack.store, f"its webhook's job\n{stack.logs_text()}", also=settled)

    status = httpx.get(
        f"{stack.sandbox}/crm/objects/2026-03/appointments/{HUBSPOT_ID}",
        params={"properties": "hs_appointment_status"},
        headers={"Authorization": "Bearer sandbox-hubspot-token"},
    ).json()["properties"]["hs_appointment_status"]
    assert status == "CANCELED"
    assert stack.writes(PATCH) == 1
    assert stack.ledger_entries() == 1
    # crmflow's own change of the status fires no rule, not even the one that notes cancellations.
    assert stack.hubspot_notes(HUBSPOT_ID) == []


def test_hubspot_add_note_when_a_person_cancels(stack: Stack) -> None:
    stack.hubspot_change(HUBSPOT_OTHER, hs_appointment_status="CANCELED")

    wait_for(lambda: len(stack.hubspot_notes(HUBSPOT_OTHER)) == 1, f"the note\n{stack.logs_text()}")
    wait_until_idle(stack.store, f"the workers\n{stack.logs_text()}")

    [note] = stack.hubspot_notes(HUBSPOT_OTHER)
    assert note["properties"]["hs_note_body"].startswith("Cancelled\nIt was SCHEDULED.\n\n[crmflow ")
    assert stack.writes("POST /crm/objects/2026-03/notes") == 1
