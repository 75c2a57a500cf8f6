"""Zoho's Notes module: creation with the appointment as parent (both Parent_Id forms and the path form), reads."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.harness import APPOINTMENTS, SCHEDULED, Harness, error, field

NOTES = "/crm/v7/Notes"
FIELDS = {"fields": "Note_Title,Note_Content"}
PARENT = {"module": {"api_name": "Appointments__s"}, "id": SCHEDULED}


def _note(content: Any = "Cancelled by the customer", **extra: Any) -> dict[str, Any]:
    return {"Note_Title": "Cancelled", "Note_Content": content, "Parent_Id": PARENT, **extra}


async def test_a_note_is_created_under_its_appointment_and_listed_there(sb: Harness) -> None:
    created = await sb.api("POST", NOTES, json={"data": [_note()]})

    assert created.status_code == 201
    [result] = created.json()["data"]
    assert (result["code"], result["status"], result["message"]) == ("SUCCESS", "success", "record added")
    listed = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Notes", params=FIELDS)
    assert listed.status_code == 200
    assert listed.json()["data"] == [
        {"Note_Title": "Cancelled", "Note_Content": "Cancelled by the customer", "id": result["details"]["id"]}
    ]
    assert listed.json()["info"]["more_records"] is False
    [stored] = (await sb.client.get("/_sandbox/notes")).json()["data"]
    assert stored["Parent_Id"]["id"] == SCHEDULED and stored["$se_module"] == "Appointments__s"
    assert stored["Parent_Id"]["name"] == "AC Repair - James"


async def test_the_v2_form_and_the_path_form_name_the_parent_too(sb: Harness) -> None:
    legacy = {"Note_Content": "v2", "Parent_Id": SCHEDULED, "se_module": "Appointments__s"}
    first = await sb.api("POST", NOTES, json={"data": [legacy]})
    second = await sb.api("POST", f"{APPOINTMENTS}/{SCHEDULED}/Notes", json={"data": [{"Note_Content": "path"}]})

    assert (first.status_code, second.status_code) == (201, 201)
    listed = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Notes", params={"fields": "Note_Content"})
    assert [note["Note_Content"] for note in listed.json()["data"]] == ["v2", "path"]


async def test_an_appointment_without_notes_answers_204(sb: Harness) -> None:
    response = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Notes", params=FIELDS)

    assert (response.status_code, response.content) == (204, b"")


async def test_notes_come_oldest_first_a_page_at_a_time(sb: Harness) -> None:
    for n in range(3):
        await sb.api("POST", NOTES, json={"data": [_note(f"n{n}")]})
        sb.clock.advance(seconds=1)

    page = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Notes", params={**FIELDS, "per_page": "2"})
    rest = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Notes", params={**FIELDS, "per_page": "2", "page": "2"})

    assert [note["Note_Content"] for note in page.json()["data"]] == ["n0", "n1"]
    assert page.json()["info"]["more_records"] is True
    assert [note["Note_Content"] for note in rest.json()["data"]] == ["n2"]


@pytest.mark.parametrize(
    ("note", "code", "details"),
    [
        ({"Note_Title": "t", "Parent_Id": PARENT}, "MANDATORY_NOT_FOUND", field(0, "Note_Content")),
        (_note(content=5), "INVALID_DATA", field(0, "Note_Content", expected_data_type="text")),
        ({"Note_Content": "c"}, "MANDATORY_NOT_FOUND", field(0, "Parent_Id")),
        (_note(Parent_Id={"module": {"api_name": "Leads"}, "id": SCHEDULED}), "INVALID_DATA", field(0, "Parent_Id")),
        (
            _note(Parent_Id={"module": {"api_name": "Appointments__s"}, "id": "1"}),
            "INVALID_DATA",
            field(0, "Parent_Id"),
        ),
    ],
)
async def test_bad_notes_are_refused_record_by_record(
    sb: Harness, note: dict[str, Any], code: str, details: dict[str, Any]
) -> None:
    response = await sb.api("POST", NOTES, json={"data": [note, _note()]})

    assert response.status_code == 207
    refused, created = response.json()["data"]
    assert (refused["code"], refused["details"]) == (code, details)
    assert created["code"] == "SUCCESS"
    assert (await sb.client.get("/_sandbox/notes")).json()["count"] == 1


async def test_reading_notes_needs_fields_and_a_known_appointment(sb: Harness) -> None:
    without_fields = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}/Notes")
    unknown = await sb.api("GET", f"{APPOINTMENTS}/5545974000009999999/Notes", params=FIELDS)
    unknown_post = await sb.api("POST", f"{APPOINTMENTS}/5545974000009999999/Notes", json={"data": [_note()]})

    assert without_fields.status_code == 400 and without_fields.json()["code"] == "REQUIRED_PARAM_MISSING"
    assert unknown.status_code == 400 and unknown.json() == error(
        "INVALID_DATA", "the id given seems to be invalid", {"resource_path_index": 1}
    )
    assert unknown_post.status_code == 400


async def test_one_note_by_id_and_the_whole_module(sb: Harness) -> None:
    created = await sb.api("POST", NOTES, json={"data": [_note()]})
    note_id = created.json()["data"][0]["details"]["id"]

    one = await sb.api("GET", f"{NOTES}/{note_id}")
    every = await sb.api("GET", NOTES, params=FIELDS)

    assert one.json()["data"][0]["Note_Content"] == "Cancelled by the customer"
    assert [note["id"] for note in every.json()["data"]] == [note_id]


async def test_a_note_sends_no_appointment_callback(sb: Harness) -> None:
    await sb.api("POST", NOTES, json={"data": [_note()]})

    assert sb.callbacks == []


async def test_notes_need_the_notes_scope(make: Any) -> None:
    sb = await make(zoho_scopes=frozenset({"ZohoCRM.modules.appointments.ALL"}))

    response = await sb.api("POST", NOTES, json={"data": [_note()]})

    assert (response.status_code, response.json()["code"]) == (401, "OAUTH_SCOPE_MISMATCH")
