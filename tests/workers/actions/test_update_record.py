"""update_record on both CRMs (the in-process sandbox, real Redis): rendered fields written once, own writes noted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from arq.connections import ArqRedis

from tests.workers.actions.runs import Sandbox, action_run, open_sandbox
from workers import keys
from workers.diff import Change, FieldChange
from workers.errors import CrmNotFoundError, CrmRejectedError, CrmTransientError
from workers.ledger import Ledger
from workers.own_writes import entry, load_state
from workers.rules.model import UpdateRecordParams
from workers.rules.templates import TemplateError
from workers.sources import hubspot as hubspot_source
from workers.sources import zoho as zoho_source

ZOHO_ID = "5545974000002555001"  # "AC Repair - James", Scheduled
HUBSPOT_ID = "51204030001"
PUT = "PUT /crm/v7/Appointments__s/{id}"
PATCH = "PATCH /crm/objects/2026-03/appointments/{id}"
STATUS = Change(fields={"Status": FieldChange("Scheduled", "Overdue")})
STAMP = UpdateRecordParams(fields={"Moved_By__c": "{{ rule.name }}: {{ record.Appointment_Name }}"})


@pytest.fixture
async def sandbox(redis: ArqRedis) -> AsyncIterator[Sandbox]:
    async for opened in open_sandbox(redis):
        yield opened


async def test_zoho_fields_are_rendered_and_put_once(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.zoho_record(ZOHO_ID)
    run = action_run(Ledger(redis), record, STATUS, STAMP)

    first = await zoho_source.update_record(sandbox.zoho, run)
    again = await zoho_source.update_record(sandbox.zoho, run)

    assert (first.status, first.detail) == ("created", ZOHO_ID)
    assert again.status == "already_logged"
    assert (await sandbox.zoho_record(ZOHO_ID)).fields["Moved_By__c"] == "stamp: AC Repair - James"
    assert await sandbox.count(PUT) == 1
    _, own = await load_state(redis, "zoho", "Appointments__s", ZOHO_ID)
    assert own == {"Moved_By__c": entry("stamp: AC Repair - James", None, record.fields.get("Moved_By__c"))}


async def test_hubspot_properties_are_rendered_and_patched_once(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.hubspot.get_appointment(HUBSPOT_ID)
    change = Change(fields={"hs_appointment_status": FieldChange("SCHEDULED", "CANCELED")})
    params = UpdateRecordParams(fields={"hs_appointment_location": "was {{ previous.hs_appointment_status }}"})
    run = action_run(Ledger(redis), record, change, params)

    result = await hubspot_source.update_record(sandbox.hubspot, run)
    await hubspot_source.update_record(sandbox.hubspot, run)

    assert result.status == "created"
    location = await sandbox.hubspot.get_appointment(HUBSPOT_ID, ["hs_appointment_location"])
    assert location.fields["hs_appointment_location"] == "was SCHEDULED"
    assert await sandbox.count(PATCH) == 1
    _, own = await load_state(redis, "hubspot", "appointments", HUBSPOT_ID)
    before = record.fields.get("hs_appointment_location")
    assert own == {"hs_appointment_location": entry("was SCHEDULED", None, before)}


async def test_a_record_that_already_holds_the_values_is_not_written(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.zoho_record(ZOHO_ID)
    params = UpdateRecordParams(fields={"Appointment_Name": "{{ record.Appointment_Name }}"})

    result = await zoho_source.update_record(sandbox.zoho, action_run(Ledger(redis), record, STATUS, params))

    assert (result.status, await sandbox.count(PUT)) == ("found_in_crm", 0)


async def test_a_lost_answer_is_retried_with_the_pending_values_and_found_on_the_record(
    redis: ArqRedis, sandbox: Sandbox
) -> None:
    ledger = Ledger(redis)
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "after": True})
    record = await sandbox.zoho_record(ZOHO_ID)
    run = action_run(ledger, record, STATUS, STAMP)
    with pytest.raises(CrmTransientError):
        await zoho_source.update_record(sandbox.zoho, run)
    _, own = await load_state(redis, "zoho", "Appointments__s", ZOHO_ID)
    assert "Moved_By__c" in own  # noted before the call: its notification will be recognised

    # The retry fetches the record again (it holds the write) and renders the same key's effect.
    again = replace(run, record=await sandbox.zoho_record(ZOHO_ID))
    result = await zoho_source.update_record(sandbox.zoho, again)

    assert result.status == "found_in_crm"
    assert await sandbox.count(PUT) == 1


NOTE = UpdateRecordParams(fields={"Additional_Information": "checked"})


async def test_a_retry_that_finds_a_persons_newer_value_leaves_it_and_is_superseded(
    redis: ArqRedis, sandbox: Sandbox
) -> None:
    ledger = Ledger(redis)
    # The PUT fails before Zoho applies it (a 5xx: it may have applied, so the entry stays pending).
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "times": 1})
    run = action_run(ledger, await sandbox.zoho_record(ZOHO_ID), STATUS, NOTE)
    with pytest.raises(CrmTransientError):
        await zoho_source.update_record(sandbox.zoho, run)
    # Meanwhile a person writes the field: the retry must not put crmflow's pending value over theirs.
    await sandbox.http.patch(f"/_sandbox/appointments/{ZOHO_ID}", json={"Additional_Information": "Bob's"})

    again = replace(run, record=await sandbox.zoho_record(ZOHO_ID))
    result = await zoho_source.update_record(sandbox.zoho, again)
    later = await zoho_source.update_record(sandbox.zoho, again)

    assert (result.status, result.detail) == ("superseded", "changed since by someone else: Additional_Information")
    assert later.status == "already_logged"
    assert (await sandbox.zoho_record(ZOHO_ID)).fields["Additional_Information"] == "Bob's"
    assert await sandbox.count(PUT) == 1


async def test_a_retry_that_finds_the_value_before_the_write_writes_it(redis: ArqRedis, sandbox: Sandbox) -> None:
    ledger = Ledger(redis)
    await sandbox.faults({"method": "PUT", "path_prefix": "/crm/v7/Appointments__s", "status": 500, "times": 1})
    run = action_run(ledger, await sandbox.zoho_record(ZOHO_ID), STATUS, NOTE)
    with pytest.raises(CrmTransientError):
        await zoho_source.update_record(sandbox.zoho, run)

    again = replace(run, record=await sandbox.zoho_record(ZOHO_ID))
    result = await zoho_source.update_record(sandbox.zoho, again)

    assert result.status == "created"
    assert (await sandbox.zoho_record(ZOHO_ID)).fields["Additional_Information"] == "checked"
    assert await sandbox.count(PUT) == 2


async def test_zohos_reschedule_note_trap_is_a_final_refusal_and_forgets_the_own_write(
    redis: ArqRedis, sandbox: Sandbox
) -> None:
    record = await sandbox.zoho_record(ZOHO_ID)
    params = UpdateRecordParams(fields={"Reschedule_Note": "Moved with short notice"})
    run = action_run(Ledger(redis), record, STATUS, params)

    with pytest.raises(CrmRejectedError) as refused:
        await zoho_source.update_record(sandbox.zoho, run)

    assert refused.value.code == "DEPENDENT_FIELD_MISSING"
    assert await load_state(redis, "zoho", "Appointments__s", ZOHO_ID) == (None, {})
    assert await redis.get(run.change_key()) is None  # the refusal left no pending entry
    assert not await redis.exists(keys.own_writes("zoho", "Appointments__s", ZOHO_ID))


async def test_a_deleted_appointment_is_not_found(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.zoho_record(ZOHO_ID)
    gone = replace(record, id="5545974000009999999", fields={**record.fields, "id": "5545974000009999999"})

    with pytest.raises(CrmNotFoundError):
        await zoho_source.update_record(sandbox.zoho, action_run(Ledger(redis), gone, STATUS, STAMP))


async def test_a_template_that_cannot_render_writes_nothing(redis: ArqRedis, sandbox: Sandbox) -> None:
    record = await sandbox.zoho_record(ZOHO_ID)
    params = UpdateRecordParams(fields={"Moved_By__c": "{{ record.No_Such_Field }}"})

    with pytest.raises(TemplateError):
        await zoho_source.update_record(sandbox.zoho, action_run(Ledger(redis), record, STATUS, params))

    assert await sandbox.count(PUT) == 0
    assert await load_state(redis, "zoho", "Appointments__s", ZOHO_ID) == (None, {})
