"""add_note on both CRMs (the in-process sandbox, real Redis): one marked note per change, found again after a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from arq.connections import ArqRedis

from tests.workers.actions.runs import Sandbox, action_run, open_sandbox
from workers.actions.add_note import hubspot_body, marked, marker
from workers.diff import Change, FieldChange
from workers.errors import CrmTransientError
from workers.ledger import Ledger
from workers.rules.model import AddNoteParams
from workers.sources import hubspot as hubspot_source
from workers.sources import zoho as zoho_source

ZOHO_ID = "5545974000002555001"
HUBSPOT_ID = "51204030001"
ZOHO_CREATE = "POST /crm/v7/Notes"
HUBSPOT_CREATE = "POST /crm/objects/2026-03/notes"
CANCELLED = Change(fields={"Status": FieldChange("Scheduled", "Cancelled")})
NOTE = AddNoteParams(title="Cancelled", content="{{ record.Appointment_Name }} was {{ previous.Status }}.")


@pytest.fixture
async def sandbox(redis: ArqRedis) -> AsyncIterator[Sandbox]:
    async for opened in open_sandbox(redis):
        yield opened


def test_the_marker_names_the_ledger_entry_on_a_line_of_its_own() -> None:
    mark = marker("crmflow:ledger:0123456789abcdef0123")

    assert mark == "[crmflow 0123456789ab]"
    assert marked("Due Tuesday.\n", mark) == "Due Tuesday.\n\n[crmflow 0123456789ab]"
    assert marked("", mark) == mark
    assert hubspot_body("Cancelled", "x") == "Cancelled\nx" and hubspot_body(" ", "x") == "x"


async def test_a_zoho_note_under_the_appointment_once(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.zoho_record(ZOHO_ID)
    run = action_run(Ledger(redis), record, CANCELLED, NOTE)

    first = await zoho_source.add_note(sandbox.zoho, run)
    again = await zoho_source.add_note(sandbox.zoho, run)

    assert (first.status, again.status) == ("created", "already_logged")
    [note] = await sandbox.zoho_notes()
    assert note["id"] == first.detail
    assert note["Parent_Id"]["id"] == ZOHO_ID
    assert note["Note_Title"] == "Cancelled"
    assert note["Note_Content"] == f"AC Repair - James was Scheduled.\n\n{marker(run.change_key())}"


async def test_a_hubspot_note_associated_and_dated_when_the_change_was_made(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.hubspot.get_appointment(HUBSPOT_ID)
    change = Change(fields={"hs_appointment_status": FieldChange("SCHEDULED", "CANCELED")})
    params = AddNoteParams(title="Cancelled", content="It was {{ previous.hs_appointment_status }}.")
    run = action_run(Ledger(redis), record, change, params)

    first = await hubspot_source.add_note(sandbox.hubspot, run)
    await hubspot_source.add_note(sandbox.hubspot, run)

    [note] = await sandbox.hubspot_notes()
    assert note["id"] == first.detail
    assert note["properties"]["hs_note_body"] == f"Cancelled\nIt was SCHEDULED.\n\n{marker(run.change_key())}"
    assert HUBSPOT_ID in str(note["associations"])
    assert await sandbox.count(HUBSPOT_CREATE) == 1


@pytest.mark.parametrize("crm", ["zoho", "hubspot"])
async def test_after_a_lost_answer_the_retry_finds_the_note_by_its_marker(
    redis: ArqRedis, sandbox: Sandbox, crm: str
) -> None:
    ledger = Ledger(redis)
    if crm == "zoho":
        record, create, path = await sandbox.zoho_record(ZOHO_ID), ZOHO_CREATE, "/crm/v7/Notes"
    else:
        record, create, path = await sandbox.hubspot.get_appointment(HUBSPOT_ID), HUBSPOT_CREATE, "/crm/objects"
    params = AddNoteParams(title="Same words", content="Always the same words.")
    source = zoho_source if crm == "zoho" else hubspot_source
    client = sandbox.zoho if crm == "zoho" else sandbox.hubspot
    # An earlier change's note with the very same words: not this change's note.
    await source.add_note(client, action_run(ledger, record, CANCELLED, params, rule="earlier"))
    await sandbox.faults({"method": "POST", "path_prefix": path, "status": 500, "after": True, "times": 1})
    run = action_run(ledger, record, CANCELLED, params)
    with pytest.raises(CrmTransientError):
        await source.add_note(client, run)

    result = await source.add_note(client, run)

    assert result.status == "found_in_crm"
    assert await sandbox.count(create) == 2  # the earlier rule's and this one's, each once
