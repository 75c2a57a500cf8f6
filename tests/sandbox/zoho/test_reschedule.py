"""PUT /Appointments__s: reschedules, their derived fields and every rule Zoho documents for them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import (
    API_USER,
    APPOINTMENTS,
    CANCELLED,
    COMPLETED,
    HISTORY,
    RESCHEDULED,
    SCHEDULED,
    Harness,
    error,
    field,
)

NEW_START = "2026-03-10T15:00:00+00:00"
NOW = "2026-03-02T09:15:30+00:00"
PATRICIA = {**API_USER, "email": "patricia.boyle@zylker.example"}


def _put(*records: dict[str, Any]) -> dict[str, Any]:
    return {"data": list(records)}


async def test_reschedule_sets_every_derived_field(sb: Harness) -> None:
    response = await sb.reschedule(SCHEDULED, NEW_START, Reschedule_Reason="By Team", Reschedule_Note="Van broke")

    assert response.status_code == 200
    assert response.json() == {
        "data": [
            {
                "code": "SUCCESS",
                "details": {
                    "Modified_Time": NOW,
                    "Modified_By": API_USER,
                    "Created_Time": "2026-02-23T09:15:30+00:00",
                    "id": SCHEDULED,
                    "Created_By": API_USER,
                },
                "message": "record updated",
                "status": "success",
            }
        ]
    }
    record = await sb.appointment(SCHEDULED)
    assert record["Appointment_Start_Time"] == NEW_START
    assert record["Appointment_End_Time"] == "2026-03-10T16:00:00+00:00"
    assert record["Duration"] == 60
    assert record["Rescheduled_From"] == "2026-03-04T09:30:00+00:00"
    assert record["Rescheduled_To"] == NEW_START
    assert record["Rescheduled_Time"] == NOW
    assert record["Rescheduled_By"] == PATRICIA
    assert record["Reschedule_Count"] == 1
    assert (record["Reschedule_Reason"], record["Reschedule_Note"]) == ("By Team", "Van broke")
    assert (record["Modified_Time"], record["Modified_By"]) == (NOW, PATRICIA)


async def test_second_reschedule_counts_up_and_clears_an_old_reason(sb: Harness) -> None:
    response = await sb.reschedule(RESCHEDULED, "2026-03-05T16:30:00+01:00")

    record = await sb.appointment(RESCHEDULED)
    assert response.status_code == 200
    assert record["Reschedule_Count"] == 2
    assert record["Rescheduled_From"] == "2026-03-05T14:00:00+00:00"
    assert record["Rescheduled_To"] == record["Appointment_Start_Time"] == "2026-03-05T15:30:00+00:00"
    assert record["Appointment_End_Time"] == "2026-03-05T17:00:00+00:00"
    assert record["Reschedule_Reason"] is None


async def test_given_rescheduled_from_is_kept(sb: Harness) -> None:
    await sb.reschedule(SCHEDULED, NEW_START, Rescheduled_From="2026-03-04T08:00:00+00:00")

    assert (await sb.appointment(SCHEDULED))["Rescheduled_From"] == "2026-03-04T08:00:00+00:00"


async def test_reschedule_by_id_in_the_path(sb: Harness) -> None:
    response = await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json=_put({"Appointment_Start_Time": NEW_START}))

    assert response.status_code == 200
    assert (await sb.appointment(SCHEDULED))["Rescheduled_To"] == NEW_START


async def test_path_form_takes_one_record_only(sb: Harness) -> None:
    body = _put({"Appointment_Start_Time": NEW_START}, {"Status": "Cancelled"})

    response = await sb.api("PUT", f"{APPOINTMENTS}/{SCHEDULED}", json=body)

    assert response.status_code == 400
    assert response.json() == error(
        "INVALID_DATA", "invalid data", {"maximum_length": 1, "api_name": "data", "json_path": "$.data"}
    )


async def test_path_form_with_unknown_id(sb: Harness) -> None:
    body = _put({"Appointment_Start_Time": NEW_START})

    response = await sb.api("PUT", f"{APPOINTMENTS}/5545974000009999999", json=body)

    assert response.status_code == 400
    assert response.json() == error("INVALID_DATA", "the id given seems to be invalid", {"resource_path_index": 1})


@pytest.mark.parametrize("same", ["2026-03-04T09:30:00+00:00", "2026-03-04T15:00:00+05:30"])
async def test_same_start_time_is_dependent_field_unchanged(sb: Harness, same: str) -> None:
    response = await sb.reschedule(SCHEDULED, same)

    assert response.status_code == 400
    assert response.json() == {
        "data": [
            error(
                "DEPENDENT_FIELD_UNCHANGED",
                "Reschedule_From and Appointment_Start_Time cannot be same",
                {"dependee": field(0, "Appointment_Start_Time"), **field(0, "Rescheduled_From")},
            )
        ]
    }
    assert (await sb.appointment(SCHEDULED))["Reschedule_Count"] == 0


@pytest.mark.parametrize("key", ["Reschedule_Reason", "Reschedule_Note", "Rescheduled_From"])
async def test_reschedule_details_without_new_start_are_dependent_field_missing(sb: Harness, key: str) -> None:
    value = "2026-03-04T08:00:00+00:00" if key == "Rescheduled_From" else "By Team"

    response = await sb.api("PUT", APPOINTMENTS, json=_put({"id": RESCHEDULED, key: value}))

    assert response.status_code == 400
    result = response.json()["data"][0]
    assert result["code"] == "DEPENDENT_FIELD_MISSING"
    assert result["details"] == {"dependee": field(0, key), **field(0, "Appointment_Start_Time")}
    assert result["status"] == "error"


@pytest.mark.parametrize(("record_id", "status"), [(CANCELLED, "Cancelled"), (COMPLETED, "Completed")])
async def test_closed_appointments_cannot_be_rescheduled(sb: Harness, record_id: str, status: str) -> None:
    response = await sb.reschedule(record_id, NEW_START)

    assert response.status_code == 403
    assert response.json() == {
        "data": [
            error("NOT_ALLOWED", f"{status} appointments cannot be rescheduled", field(0, "Appointment_Start_Time"))
        ]
    }


async def test_reason_outside_the_picklist_is_invalid_data(sb: Harness) -> None:
    response = await sb.reschedule(SCHEDULED, NEW_START, Reschedule_Reason="By Weather")

    assert response.status_code == 400
    assert response.json() == {"data": [error("INVALID_DATA", "invalid data", field(0, "Reschedule_Reason"))]}


@pytest.mark.parametrize(
    "value",
    ["2026-03-10T15:00:00.000+00:00", "2026-03-10T15:00:00", "10/03/2026 15:00", "2026-02-30T15:00:00+00:00", 5],
)
async def test_start_time_must_be_iso_8601_with_offset(sb: Harness, value: object) -> None:
    response = await sb.api("PUT", APPOINTMENTS, json=_put({"id": SCHEDULED, "Appointment_Start_Time": value}))

    assert response.status_code == 400
    assert response.json() == {
        "data": [
            error("INVALID_DATA", "invalid data", field(0, "Appointment_Start_Time", expected_data_type="datetime"))
        ]
    }


async def test_rescheduling_into_the_past_is_dependent_mismatch(sb: Harness) -> None:
    response = await sb.reschedule(SCHEDULED, "2026-03-01T10:00:00+00:00")

    assert response.status_code == 400
    assert response.json()["data"][0] == error(
        "DEPENDENT_MISMATCH",
        "Appointment cannot be scheduled for past dates",
        {"dependee": field(0, "Appointment_Start_Time"), **field(0, "Status")},
    )


async def test_record_id_is_mandatory_and_must_exist(sb: Harness) -> None:
    body = _put(
        {"Appointment_Start_Time": NEW_START}, {"id": "5545974000009999999", "Appointment_Start_Time": NEW_START}
    )

    response = await sb.api("PUT", APPOINTMENTS, json=body)

    assert response.status_code == 400
    assert response.json() == {
        "data": [
            error("MANDATORY_NOT_FOUND", "required field not found", field(0, "id")),
            error("INVALID_DATA", "the id given seems to be invalid", field(1, "id")),
        ]
    }


async def test_mixed_results_are_207_in_input_order(sb: Harness) -> None:
    body = _put(
        {"id": CANCELLED, "Appointment_Start_Time": NEW_START},
        {"id": SCHEDULED, "Appointment_Start_Time": NEW_START},
    )

    response = await sb.api("PUT", APPOINTMENTS, json=body)

    assert response.status_code == 207
    assert [result["code"] for result in response.json()["data"]] == ["NOT_ALLOWED", "SUCCESS"]
    assert response.json()["data"][1]["details"]["id"] == SCHEDULED


async def test_more_than_100_records_is_rejected_whole(sb: Harness) -> None:
    body = _put(*[{"id": SCHEDULED, "Status": "Scheduled"}] * 101)

    response = await sb.api("PUT", APPOINTMENTS, json=body)

    assert response.status_code == 400
    assert response.json() == error(
        "INVALID_DATA", "invalid data", {"maximum_length": 100, "api_name": "data", "json_path": "$.data"}
    )


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"not json", "INVALID_DATA"), (b"{}", "MANDATORY_NOT_FOUND"), (b'{"data": []}', "MANDATORY_NOT_FOUND")],
)
async def test_body_must_hold_a_data_array(sb: Harness, content: bytes, code: str) -> None:
    response = await sb.api("PUT", APPOINTMENTS, content=content)

    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_cancel_through_status_sets_cancellation_fields(sb: Harness) -> None:
    body = _put({"id": SCHEDULED, "Status": "Cancelled", "Cancellation_Reason": "By Team"})

    response = await sb.api("PUT", APPOINTMENTS, json=body)

    record = await sb.appointment(SCHEDULED)
    assert response.status_code == 200
    assert (record["Status"], record["Cancellation_Reason"]) == ("Cancelled", "By Team")
    assert (record["Cancelled_Time"], record["Cancelled_By"]) == (NOW, PATRICIA)
    assert record["Reschedule_Count"] == 0


async def test_cancellation_fields_need_status_cancelled(sb: Harness) -> None:
    response = await sb.api("PUT", APPOINTMENTS, json=_put({"id": SCHEDULED, "Cancellation_Note": "x"}))

    assert response.status_code == 400
    assert response.json()["data"][0]["code"] == "DEPENDENT_FIELD_MISSING"


async def test_completing_before_the_end_is_dependent_mismatch(sb: Harness) -> None:
    response = await sb.api("PUT", APPOINTMENTS, json=_put({"id": SCHEDULED, "Status": "Completed"}))

    assert response.status_code == 400
    assert (
        response.json()["data"][0]["message"] == "Appointment cannot be marked as completed before the appointment ends"
    )


async def test_system_fields_in_the_body_are_ignored(sb: Harness) -> None:
    body = _put({"id": SCHEDULED, "Reschedule_Count": 9, "Created_Time": NOW, "Appointment_Name": "AC Repair - Jim"})

    response = await sb.api("PUT", APPOINTMENTS, json=body)

    record = await sb.appointment(SCHEDULED)
    assert response.status_code == 200
    assert (record["Reschedule_Count"], record["Appointment_Name"]) == (0, "AC Repair - Jim")
    assert record["Created_Time"] == "2026-02-23T09:15:30+00:00"


async def test_no_history_row_is_written_by_default(sb: Harness) -> None:
    await sb.reschedule(RESCHEDULED, NEW_START)
    await sb.reschedule(RESCHEDULED, "2026-03-11T15:00:00+00:00")

    assert (await sb.client.get("/_sandbox/history")).json() == {"count": 0, "data": []}


async def test_auto_history_archives_the_previous_reschedule(make: MakeSandbox) -> None:
    sb = await make(auto_history=True)

    await sb.reschedule(SCHEDULED, NEW_START)  # first reschedule: it lives on the record only
    assert (await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Appointments_Rescheduled_History__s")).status_code == 204
    await sb.reschedule(SCHEDULED, "2026-03-11T15:00:00+00:00")

    rows = (await sb.api("GET", HISTORY, params={"fields": "Rescheduled_From,Rescheduled_To,Appointment_Name"})).json()
    assert rows["data"] == [
        {
            "Appointment_Name": {"name": "AC Repair - James", "id": SCHEDULED},
            "Rescheduled_From": "2026-03-04T09:30:00+00:00",
            "Rescheduled_To": NEW_START,
            "id": rows["data"][0]["id"],
        }
    ]
