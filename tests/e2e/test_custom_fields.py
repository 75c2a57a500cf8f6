"""Custom fields end to end: a rule that watches and tests a custom field fires once on each CRM.

The sandbox starts with a custom field on each CRM (`--custom-field`); the worker, whose rules name them, reads
the CRMs' field lists to accept the rules, fetches the custom field with the record, and runs the rule's
update_record when a person changes it through the sandbox's control routes. On HubSpot the rule writes another
custom property, whose own webhook comes back (the sandbox subscribes custom properties like built-in ones).
Each write is made exactly once, and its own notification fires nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_record_writes import HUBSPOT_ID, HUBSPOT_OTHER, PATCH, PUT, Stack
from tests.processes import start_stack, wait_for, wait_until_idle

CUSTOM_FIELDS = (
    "zoho:Appointments__s:Visit_Priority",
    "hubspot:appointments:visit_priority",
    "hubspot:appointments:priority_note",
)
RULES = """
version: 1
rules:
  - name: zoho-urgent-visits
    source: zoho
    module: Appointments__s
    when: {changed: [Visit_Priority]}
    conditions:
      - {field: Visit_Priority, equals: Urgent}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "Priority {{ record.Visit_Priority }}"
  - name: hubspot-urgent-visits
    source: hubspot
    module: appointments
    when: {changed: [visit_priority]}
    conditions:
      - {field: visit_priority, equals: urgent}
    actions:
      - type: update_record
        with:
          fields:
            priority_note: "Priority {{ record.visit_priority }}"
"""


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    custom_fields = [arg for spec in CUSTOM_FIELDS for arg in ("--custom-field", spec)]
    running = start_stack(tmp_path, redis_url, RULES, sandbox_extra=custom_fields)
    try:
        ready = Stack(running.sandbox, running.store, tmp_path)
        ready.baseline()
        yield ready
    finally:
        running.stop()


def hubspot_note(sandbox: str, record_id: str) -> str | None:
    response = httpx.get(
        f"{sandbox}/crm/objects/2026-03/appointments/{record_id}",
        params={"properties": "priority_note"},
        headers={"Authorization": "Bearer sandbox-hubspot-token"},
        timeout=5,
    )
    note: str | None = response.json()["properties"]["priority_note"]
    return note


def test_a_rule_on_a_custom_field_fires_once_on_each_crm(stack: Stack) -> None:
    assert stack.zoho_record()["Visit_Priority"] is None

    stack.zoho_change(Visit_Priority="Urgent")
    stack.hubspot_change(visit_priority="urgent")
    stack.hubspot_change(HUBSPOT_OTHER, visit_priority="low")  # the condition is false: no write

    written = "Priority Urgent"
    wait_for(lambda: stack.zoho_callbacks_answered("Additional_Information", written), f"zoho\n{stack.logs_text()}")
    settled = lambda: stack.hubspot_settled("Priority urgent")  # noqa: E731
    wait_for(settled, f"hubspot\n{stack.logs_text()}")
    wait_until_idle(stack.store, f"the writes' own notifications\n{stack.logs_text()}", also=settled)

    assert stack.zoho_record()["Additional_Information"] == written
    assert hubspot_note(stack.sandbox, HUBSPOT_ID) == "Priority urgent"
    assert hubspot_note(stack.sandbox, HUBSPOT_OTHER) is None
    assert (stack.writes(PUT), stack.writes(PATCH)) == (1, 1)
    assert stack.ledger_entries() == 2
