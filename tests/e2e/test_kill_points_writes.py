"""Workers SIGKILLed at each named point of a job running update_record and add_note: each effect happens once.

The rule writes the very field it watches (the hardest case for own writes): three appointments changed by a
person, three doomed workers (one job each) held and killed before the (first) CRM write, between the CRM's
answer and the ledger, and before the new state is saved. The Zoho rule updates then notes; the HubSpot rule,
whose condition tests the field it writes, notes then updates. A fresh worker finishes all three: one write
and one note per appointment, the field written once (not "(checked) (checked)"). Without own writes naming
the change they were written for, the job killed after its write would lose its note (its retry would take
the field for crmflow's own change); without the note's marker, a retry would write a second note.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.conftest import enqueue
from tests.e2e.test_kill_points import JOB_TIMEOUT_S, kill_when_held
from tests.processes import sandbox_auth, stack_env, start, stop, wait_for, wait_until_idle
from workers.checkpoints import JOB_POINTS
from workers.contract import QUEUE_NAME, ChangeEvent

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
      - type: add_note
        with:
          title: Checked
          content: "{{ record.Appointment_Name }}"
  - name: no-show-means-cancelled
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    conditions:
      - {field: hs_appointment_status, equals: NO_SHOW}
    actions: # the note first: the condition tests the field update_record changes (docs/rules.md)
      - type: add_note
        with:
          title: No show
          content: "{{ record.hs_appointment_name }}"
      - type: update_record
        with:
          fields:
            hs_appointment_status: CANCELED
"""


class Zoho:
    module = "Appointments__s"
    write = "PUT /crm/v7/Appointments__s/{id}"
    create_note = "POST /crm/v7/Notes"

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def prepare(self) -> list[str]:
        ids = ["5545974000002555001"]
        for n in range(2):
            created = self.http.post("/_sandbox/appointments", json={"Appointment_Name": f"Kill {n}"})
            ids.append(created.json()["data"][0]["id"])
        return ids

    def change(self, record_id: str) -> None:
        answer = self.http.patch(f"/_sandbox/appointments/{record_id}", json={"Additional_Information": "Gate 12"})
        assert answer.status_code == 200, answer.text

    def value(self, record_id: str) -> Any:
        body = self.http.get(f"/crm/v7/Appointments__s/{record_id}", headers=sandbox_auth(self.http)).json()
        return body["data"][0]["Additional_Information"]

    def notes(self, record_id: str) -> int:
        return sum(note["Parent_Id"]["id"] == record_id for note in self.http.get("/_sandbox/notes").json()["data"])


class HubSpot:
    module = "appointments"
    write = "PATCH /crm/objects/2026-03/appointments/{id}"
    create_note = "POST /crm/objects/2026-03/notes"

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def prepare(self) -> list[str]:
        ids = ["51204030001"]
        for n in range(2):
            props = {"hs_appointment_name": f"Kill {n}", "hs_appointment_status": "SCHEDULED"}
            ids.append(self.http.post("/_sandbox/hubspot/appointments", json={"properties": props}).json()["id"])
        return ids

    def change(self, record_id: str) -> None:
        change = {"properties": {"hs_appointment_status": "NO_SHOW"}, "user_id": "71230003"}
        assert self.http.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=change).status_code == 200

    def value(self, record_id: str) -> Any:
        headers = {"Authorization": "Bearer sandbox-hubspot-token"}
        path = f"/crm/objects/2026-03/appointments/{record_id}?properties=hs_appointment_status"
        return self.http.get(path, headers=headers).json()["properties"]["hs_appointment_status"]

    def notes(self, record_id: str) -> int:
        notes = self.http.get("/_sandbox/hubspot/notes").json()["notes"]
        return sum(record_id in str(note["associations"]) for note in notes)


CRMS: dict[str, tuple[Callable[[httpx.Client], Zoho | HubSpot], str]] = {
    "zoho": (Zoho, "Gate 12 (checked)"),
    "hubspot": (HubSpot, "CANCELED"),
}


def queue(store: redis.Redis, source: str, module: str, ids: list[str], operation: str, first: int) -> None:
    for n, record_id in enumerate(ids):
        fields = {"source": source, "module": module, "record_id": record_id, "operation": operation}
        enqueue(store, ChangeEvent.model_validate(fields | {"notified_at_ms": first + n}))


@pytest.mark.parametrize("source", list(CRMS))
def test_killed_at_every_point_each_write_and_note_happens_once(
    source: str, sandbox_url: str, redis_url: str, tmp_path: Path
) -> None:
    make, expected = CRMS[source]
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    http = httpx.Client(base_url=sandbox_url, timeout=10)
    crm = make(http)
    ids = crm.prepare()
    env = stack_env(
        redis_url, sandbox_url, RULES_PATH=str(rules), WORKER_JOB_TIMEOUT_S=str(JOB_TIMEOUT_S), WORKER_MAX_JOBS="1"
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # crmflow has seen each appointment once (its snapshot), then a person changes each of them.
        processes.append(start(["worker"], env, tmp_path, tmp_path / "baseline.log"))
        queue(store, source, crm.module, ids, "insert", 1)
        wait_until_idle(store, "the baseline", timeout_s=20)
        stop(processes.pop())
        for record_id in ids:
            crm.change(record_id)
        doomed = [
            start(["worker"], env | {"CRMFLOW_TEST_PAUSE_AT": point}, tmp_path, tmp_path / f"doomed-{point}.log")
            for point in JOB_POINTS
        ]
        processes.extend(doomed)
        wait_for(lambda: store.exists(f"{QUEUE_NAME}:health-check") == 1, "the workers")
        queue(store, source, crm.module, ids, "update", 100)
        for point in JOB_POINTS:
            kill_when_held(store, point)
        for process in doomed:
            process.wait(timeout=10)
        killed_at = time.monotonic()
        processes.append(start(["worker"], env, tmp_path, tmp_path / "recovery.log"))

        wait_for(lambda: all(crm.notes(i) >= 1 for i in ids), "every note", timeout_s=JOB_TIMEOUT_S + 40)
        wait_until_idle(store, "the queue to empty", timeout_s=15)
        recovered_s = time.monotonic() - killed_at
        values = [crm.value(i) for i in ids]
        notes = [crm.notes(i) for i in ids]
        counts = http.get("/_sandbox/requests").json()["by_endpoint"]
        writes, notes_created = counts.get(crm.write, 0), counts.get(crm.create_note, 0)
    finally:
        for process in processes:
            stop(process)
        http.close()

    log = (tmp_path / "recovery.log").read_text()
    assert values == [expected] * 3, log
    assert notes == [1, 1, 1], log
    # The job killed between the CRM's answer and the ledger had written already: 3 writes in all, not 4.
    assert writes == 3, log
    assert notes_created == 3, log
    assert recovered_s <= JOB_TIMEOUT_S + 10 + 20, recovered_s
