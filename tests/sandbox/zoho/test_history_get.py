"""GET the rescheduled history: the module list (fields mandatory) and one appointment's related list."""

from __future__ import annotations

from tests.sandbox.harness import APPOINTMENTS, HISTORY, RESCHEDULED, SCHEDULED, Harness, error, history_row

RELATED = f"{APPOINTMENTS}/{RESCHEDULED}/Appointments_Rescheduled_History__s"


async def _add_rows(sb: Harness, count: int) -> list[str]:
    response = await sb.api("POST", HISTORY, json={"data": [history_row() for _ in range(count)]})
    return [result["details"]["id"] for result in response.json()["data"]]


async def test_module_list_requires_fields(sb: Harness) -> None:
    response = await sb.api("GET", HISTORY)

    assert response.status_code == 400
    assert response.json() == error(
        "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "fields"}
    )


async def test_module_list_limits_fields_to_fifty(sb: Harness) -> None:
    response = await sb.api("GET", HISTORY, params={"fields": ",".join(f"F{n}" for n in range(51))})

    assert (response.status_code, response.json()["code"]) == (400, "LIMIT_EXCEEDED")


async def test_empty_history_is_204(sb: Harness) -> None:
    module_list = await sb.api("GET", HISTORY, params={"fields": "Rescheduled_To"})
    related = await sb.api("GET", RELATED)

    assert (module_list.status_code, module_list.content) == (204, b"")
    assert (related.status_code, related.content) == (204, b"")


async def test_module_list_returns_requested_fields_newest_first(sb: Harness) -> None:
    ids = await _add_rows(sb, 2)

    response = await sb.api("GET", HISTORY, params={"fields": "Rescheduled_To,Reschedule_Reason"})

    body = response.json()
    assert response.status_code == 200
    assert body["data"] == [
        {"Rescheduled_To": "2026-03-04T14:00:00+00:00", "id": ids[1], "Reschedule_Reason": "By Customer"},
        {"Rescheduled_To": "2026-03-04T14:00:00+00:00", "id": ids[0], "Reschedule_Reason": "By Customer"},
    ]
    assert (body["info"]["count"], body["info"]["more_records"]) == (2, False)


async def test_related_list_returns_every_field_without_a_fields_parameter(sb: Harness) -> None:
    [row_id] = await _add_rows(sb, 1)

    response = await sb.api("GET", RELATED)

    [row] = response.json()["data"]
    assert response.status_code == 200
    for key in ("Name", "Appointment_Name", "Rescheduled_From", "Rescheduled_To", "Rescheduled_Time"):
        assert key in row
    assert row["id"] == row_id
    assert row["Rescheduled_By"] == {
        "name": "Patricia Boyle",
        "id": "5545974000000393001",
        "email": "patricia.boyle@zylker.example",
    }
    assert (row["Reschedule_Reason"], row["Reschedule_Note"]) == ("By Customer", "Customer unavailable")
    assert row["Created_Time"] == "2026-03-02T09:15:30+00:00"


async def test_related_list_honours_fields_and_only_shows_its_appointment(sb: Harness) -> None:
    await _add_rows(sb, 1)

    mine = await sb.api("GET", RELATED, params={"fields": "Rescheduled_From"})
    other = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Appointments_Rescheduled_History__s")

    assert set(mine.json()["data"][0]) == {"Rescheduled_From", "id"}
    assert other.status_code == 204


async def test_related_list_of_unknown_appointment_is_invalid_data(sb: Harness) -> None:
    response = await sb.api("GET", f"{APPOINTMENTS}/5545974000009999999/Appointments_Rescheduled_History__s")

    assert response.status_code == 400
    assert response.json() == error("INVALID_DATA", "the id given seems to be invalid", {"resource_path_index": 1})


async def test_control_api_lists_every_row(sb: Harness) -> None:
    ids = await _add_rows(sb, 2)

    body = (await sb.client.get("/_sandbox/history")).json()

    assert body["count"] == 2
    assert [row["id"] for row in body["data"]] == ids
