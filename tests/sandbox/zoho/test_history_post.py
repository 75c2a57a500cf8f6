"""POST /Appointments_Rescheduled_History__s: success, each documented error, and multi-record statuses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.harness import (
    API_USER,
    HISTORY,
    OTHER_USER,
    RESCHEDULED,
    SCHEDULED,
    Harness,
    error,
    field,
    history_row,
)

NOW = "2026-03-02T09:15:30+00:00"


async def _post(sb: Harness, *rows: Any) -> tuple[int, Any]:
    response = await sb.api("POST", HISTORY, json={"data": list(rows)})
    return response.status_code, response.json()


async def test_add_one_row(sb: Harness) -> None:
    status, body = await _post(sb, history_row(Rescheduled_By=dict(OTHER_USER)))

    assert status == 201
    result = body["data"][0]
    new_id = result["details"]["id"]
    assert len(new_id) == 19 and new_id.isdigit()
    assert result == {
        "code": "SUCCESS",
        "details": {
            "Modified_Time": NOW,
            "Modified_By": API_USER,
            "Created_Time": NOW,
            "id": new_id,
            "Created_By": API_USER,
            "$approval_state": "approved",
        },
        "message": "record added",
        "status": "success",
    }
    row = (await sb.api("GET", f"{HISTORY}/{new_id}")).json()["data"][0]
    assert row["Appointment_Name"] == {"name": "Boiler Service - Maria", "id": RESCHEDULED}
    assert row["Rescheduled_By"] == {**OTHER_USER, "email": "amelia.burrows@zylker.example"}
    assert row["Rescheduled_Time"] == "2026-03-01T05:30:46+00:00"
    assert (row["Rescheduled_From"], row["Rescheduled_To"]) == (
        "2026-03-03T11:00:00+00:00",
        "2026-03-04T14:00:00+00:00",
    )
    assert (row["Reschedule_Reason"], row["Reschedule_Note"]) == ("By Customer", "Customer unavailable")


@pytest.mark.parametrize(
    "missing", ["Appointment_Name", "Rescheduled_Time", "Rescheduled_By", "Rescheduled_From", "Rescheduled_To"]
)
async def test_each_mandatory_field(sb: Harness, missing: str) -> None:
    row = history_row()
    del row[missing]

    status, body = await _post(sb, row)

    assert status == 400
    assert body == {"data": [error("MANDATORY_NOT_FOUND", "required field not found", field(0, missing))]}


@pytest.mark.parametrize("key", ["Rescheduled_Time", "Rescheduled_From", "Rescheduled_To"])
async def test_datetimes_must_be_iso_8601(sb: Harness, key: str) -> None:
    status, body = await _post(sb, history_row(**{key: "2026-03-01 11:00"}))

    assert status == 400
    assert body == {"data": [error("INVALID_DATA", "invalid data", field(0, key, expected_data_type="datetime"))]}


async def test_rescheduled_time_after_now_is_invalid_data(sb: Harness) -> None:
    status, body = await _post(sb, history_row(Rescheduled_Time="2026-03-02T09:15:31+00:00"))

    assert status == 400
    assert body == {
        "data": [
            error(
                "INVALID_DATA",
                "The Rescheduled_Time key has a time greater than the current time",
                field(0, "Rescheduled_Time"),
            )
        ]
    }


async def test_rescheduled_time_equal_to_now_is_accepted(sb: Harness) -> None:
    status, _ = await _post(sb, history_row(Rescheduled_Time=NOW))

    assert status == 201


async def test_unknown_appointment_id_is_invalid_data(sb: Harness) -> None:
    row = history_row(Appointment_Name={"name": "Boiler Service - Maria", "id": "5545974000009999999"})

    status, body = await _post(sb, row)

    assert status == 400
    assert body == {"data": [error("INVALID_DATA", "invalid data", field(0, "Appointment_Name"))]}


async def test_unknown_user_id_is_invalid_data(sb: Harness) -> None:
    status, body = await _post(sb, history_row(Rescheduled_By={"name": "Ghost", "id": "5545974000000000001"}))

    assert status == 400
    assert body == {"data": [error("INVALID_DATA", "invalid data", field(0, "Rescheduled_By"))]}


async def test_lookup_that_is_not_an_object_is_invalid_data(sb: Harness) -> None:
    status, body = await _post(sb, history_row(Appointment_Name=RESCHEDULED))

    assert status == 400
    assert body["data"][0]["details"] == field(0, "Appointment_Name", expected_data_type="jsonobject")


async def test_never_rescheduled_appointment_is_not_allowed(sb: Harness) -> None:
    status, body = await _post(sb, history_row(SCHEDULED))

    assert status == 403
    assert body == {
        "data": [
            error(
                "NOT_ALLOWED",
                "You have tried to make an entry without rescheduling the appointment",
                field(0, "Appointment_Name"),
            )
        ]
    }


async def test_twenty_first_row_for_one_appointment_is_in_request_limit_exceeded(sb: Harness) -> None:
    status, _ = await _post(sb, *[history_row() for _ in range(20)])
    assert status == 201

    status, body = await _post(sb, history_row())

    assert status == 400
    assert body == {
        "data": [
            error(
                "IN_REQUEST_LIMIT_EXCEEDED",
                "You have tried to create more than 20 rescheduled history records for an appointment",
                {**field(0, "Appointment_Name"), "limit": 20},
            )
        ]
    }


async def test_the_cap_counts_rows_of_the_same_request(sb: Harness) -> None:
    status, body = await _post(sb, *[history_row() for _ in range(21)])

    assert status == 207
    assert [result["code"] for result in body["data"]] == ["SUCCESS"] * 20 + ["IN_REQUEST_LIMIT_EXCEEDED"]


async def test_reason_outside_the_picklist_is_invalid_data(sb: Harness) -> None:
    status, body = await _post(sb, history_row(Reschedule_Reason="By Customer Request"))

    assert status == 400
    assert body == {"data": [error("INVALID_DATA", "invalid data", field(0, "Reschedule_Reason"))]}


async def test_more_than_100_rows_is_rejected_whole(sb: Harness) -> None:
    status, body = await _post(sb, *[history_row() for _ in range(101)])

    assert status == 400
    assert body == error(
        "INVALID_DATA", "invalid data", {"maximum_length": 100, "api_name": "data", "json_path": "$.data"}
    )


async def test_a_row_that_is_not_an_object_is_invalid_data(sb: Harness) -> None:
    status, body = await _post(sb, "row")

    assert status == 400
    assert body["data"][0]["details"] == {"expected_data_type": "jsonobject", "json_path": "$.data[0]"}


async def test_mixed_success_and_failure_is_207(sb: Harness) -> None:
    status, body = await _post(sb, history_row(), history_row(SCHEDULED))

    assert status == 207
    assert [result["status"] for result in body["data"]] == ["success", "error"]


async def test_all_failed_takes_the_status_of_the_first_error(sb: Harness) -> None:
    status, body = await _post(sb, history_row(SCHEDULED), history_row(Reschedule_Reason="x"))

    assert status == 403
    assert [result["code"] for result in body["data"]] == ["NOT_ALLOWED", "INVALID_DATA"]
