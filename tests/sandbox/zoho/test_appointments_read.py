"""GET /Appointments__s/{id} and GET /Appointments__s: record shape, datetimes, fields and paging rules."""

from __future__ import annotations

import re

import pytest

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import (
    APPOINTMENTS,
    CANCELLED,
    COMPLETED,
    RESCHEDULED,
    SCHEDULED,
    Harness,
    error,
)
from tests.sandbox.zoho.test_auth_and_routing import INVALID_URL

ZOHO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
DATETIME_FIELDS = ("Appointment_Start_Time", "Appointment_End_Time", "Created_Time", "Modified_Time")


async def test_get_one_returns_a_wrapped_record_with_zoho_fields(sb: Harness) -> None:
    response = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}")

    assert response.status_code == 200
    assert list(response.json()) == ["data"]
    record = response.json()["data"][0]
    assert record["id"] == SCHEDULED
    assert record["Appointment_Name"] == "AC Repair - James"
    assert record["Owner"] == {
        "name": "Patricia Boyle",
        "id": "5545974000000393001",
        "email": "patricia.boyle@zylker.example",
    }
    assert record["Appointment_Start_Time"] == "2026-03-04T09:30:00+00:00"
    assert record["Appointment_End_Time"] == "2026-03-04T10:30:00+00:00"
    assert record["Duration"] == 60
    assert record["Status"] == "Scheduled"
    assert record["Reschedule_Count"] == 0
    for key in ("Rescheduled_From", "Rescheduled_To", "Rescheduled_Time", "Rescheduled_By", "Reschedule_Reason"):
        assert record[key] is None
    for key in ("Service_Name", "Appointment_For", "Location", "Cancelled_Time", "Created_By", "Modified_By"):
        assert key in record
    assert all(ZOHO_DATETIME.match(record[key]) for key in DATETIME_FIELDS)


async def test_seed_covers_rescheduled_cancelled_and_completed(sb: Harness) -> None:
    rescheduled = await sb.appointment(RESCHEDULED)
    cancelled = await sb.appointment(CANCELLED)
    completed = await sb.appointment(COMPLETED)

    assert rescheduled["Reschedule_Count"] == 1
    assert rescheduled["Rescheduled_From"] == "2026-03-04T11:00:00+00:00"
    assert rescheduled["Rescheduled_To"] == rescheduled["Appointment_Start_Time"] == "2026-03-05T14:00:00+00:00"
    assert rescheduled["Rescheduled_Time"] == "2026-03-01T08:15:30+00:00"  # 25 hours before reset
    assert rescheduled["Rescheduled_By"]["id"] == "5545974000000393001"
    assert rescheduled["Reschedule_Reason"] == "By Customer"
    assert cancelled["Status"] == "Cancelled"
    assert cancelled["Cancelled_Time"] == "2026-03-02T07:15:30+00:00"
    assert completed["Status"] == "Completed"


async def test_datetimes_render_in_the_configured_offset(make: MakeSandbox) -> None:
    sb = await make(timezone_offset="+05:30")

    record = await sb.appointment(SCHEDULED)

    assert record["Appointment_Start_Time"] == "2026-03-04T15:00:00+05:30"


async def test_get_one_with_fields_returns_those_fields_and_id(sb: Harness) -> None:
    response = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}", params={"fields": "Status,Duration"})

    assert response.json()["data"] == [{"Duration": 60, "Status": "Scheduled", "id": SCHEDULED}]


@pytest.mark.parametrize("record_id", ["5545974000009999999", "not-a-number"])
async def test_get_unknown_id_is_invalid_url_pattern(sb: Harness, record_id: str) -> None:
    response = await sb.api("GET", f"{APPOINTMENTS}/{record_id}")

    assert response.status_code == 404
    assert response.json() == INVALID_URL


async def test_list_requires_fields(sb: Harness) -> None:
    response = await sb.api("GET", APPOINTMENTS)

    assert response.status_code == 400
    assert response.json() == error(
        "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "fields"}
    )


async def test_list_accepts_fifty_fields_but_not_fifty_one(sb: Harness) -> None:
    names = [f"Field_{n}" for n in range(51)]

    ok = await sb.api("GET", APPOINTMENTS, params={"fields": ",".join(names[:50])})
    too_many = await sb.api("GET", APPOINTMENTS, params={"fields": ",".join(names)})

    assert ok.status_code == 200
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "LIMIT_EXCEEDED"
    assert too_many.json()["status"] == "error"


async def test_list_returns_requested_fields_plus_id_newest_id_first(sb: Harness) -> None:
    response = await sb.api("GET", APPOINTMENTS, params={"fields": "Status, Appointment_Name"})

    body = response.json()
    assert response.status_code == 200
    assert [record["id"] for record in body["data"]] == [COMPLETED, CANCELLED, RESCHEDULED, SCHEDULED]
    assert all(set(record) == {"id", "Status", "Appointment_Name"} for record in body["data"])
    assert body["info"] == {
        "per_page": 200,
        "next_page_token": None,
        "count": 4,
        "page": 1,
        "sort_by": "id",
        "previous_page_token": None,
        "page_token_expiry": None,
        "sort_order": "desc",
        "more_records": False,
    }


async def test_list_pages_and_sorts(sb: Harness) -> None:
    params = {"fields": "Status", "per_page": "3", "sort_order": "asc"}

    first = (await sb.api("GET", APPOINTMENTS, params={**params, "page": "1"})).json()
    second = (await sb.api("GET", APPOINTMENTS, params={**params, "page": "2"})).json()
    beyond = await sb.api("GET", APPOINTMENTS, params={**params, "page": "3"})

    assert [r["id"] for r in first["data"]] == [SCHEDULED, RESCHEDULED, CANCELLED]
    assert (first["info"]["count"], first["info"]["more_records"]) == (3, True)
    assert [r["id"] for r in second["data"]] == [COMPLETED]
    assert (second["info"]["page"], second["info"]["more_records"]) == (2, False)
    assert beyond.status_code == 204
    assert beyond.content == b""


async def test_per_page_above_200_is_capped(sb: Harness) -> None:
    response = await sb.api("GET", APPOINTMENTS, params={"fields": "Status", "per_page": "500"})

    assert response.json()["info"]["per_page"] == 200


async def test_pages_beyond_2000_records_need_a_page_token(sb: Harness) -> None:
    ok = await sb.api("GET", APPOINTMENTS, params={"fields": "Status", "page": "10", "per_page": "200"})
    over = await sb.api("GET", APPOINTMENTS, params={"fields": "Status", "page": "11", "per_page": "200"})

    assert ok.status_code == 204
    assert over.status_code == 400
    assert over.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"


@pytest.mark.parametrize(("name", "value"), [("page", "0"), ("page", "x"), ("per_page", "-1"), ("sort_order", "up")])
async def test_bad_paging_parameters_are_invalid_data(sb: Harness, name: str, value: str) -> None:
    response = await sb.api("GET", APPOINTMENTS, params={"fields": "Status", name: value})

    assert response.status_code == 400
    assert response.json() == error("INVALID_DATA", "invalid data", {"param_name": name})


async def test_unknown_page_token_is_invalid_and_ambiguous_with_page(sb: Harness) -> None:
    alone = await sb.api("GET", APPOINTMENTS, params={"fields": "Status", "page_token": "abc"})
    both = await sb.api("GET", APPOINTMENTS, params={"fields": "Status", "page_token": "abc", "page": "1"})

    assert (alone.status_code, alone.json()["code"]) == (400, "INVALID_DATA")
    assert (both.status_code, both.json()["code"]) == (400, "AMBIGUITY_DURING_PROCESSING")
