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
import redis

from crmflow.embedded_redis import free_port
from tests.e2e.test_record_writes import HUBSPOT_ID, HUBSPOT_OTHER, PATCH, PUT, SECRET, TOKEN, Stack
from tests.processes import answers, stack_env, start, stop, wait_for, wait_until_idle
from workers.contract import QUEUE_NAME

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
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(
        redis_url,
        sandbox,
        RULES_PATH=str(rules),
        ZOHO_NOTIFY_TOKEN=TOKEN,
        ZOHO_CHANNEL_IDS="1000000068001",
        HUBSPOT_CLIENT_SECRET=SECRET,
        PUBLIC_BASE_URL=receiver,
    )
    sandbox_args = ["sandbox", "--port", str(sandbox_port), "--notify-token", TOKEN]
    sandbox_args += ["--notify-url", f"{receiver}/webhooks/zoho"]
    sandbox_args += ["--hubspot-webhook-url", f"{receiver}/webhooks/hubspot"]
    for spec in CUSTOM_FIELDS:
        sandbox_args += ["--custom-field", spec]
    sandbox_process = start(sandbox_args, env, tmp_path, tmp_path / "sandbox.log")
    processes = [sandbox_process]
    try:
        # The worker reads the CRMs' field lists at start-up: the sandbox must answer first.
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history"), "the sandbox")
        processes.append(start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"))
        processes.append(start(["worker"], env, tmp_path, tmp_path / "worker.log"))
        wait_for(lambda: answers(f"{receiver}/readyz"), "the receiver")
        ready = Stack(sandbox, store, tmp_path)
        wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), f"the worker\n{ready.logs_text()}")
        ready.baseline()
        yield ready
    finally:
        for process in reversed(processes):
            stop(process)


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
