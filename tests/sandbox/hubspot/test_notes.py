"""HubSpot notes and associations: creation checks, association type ids and labels, the association endpoints."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.harness import (
    HS_APPOINTMENTS,
    HS_CANCELED,
    HS_NOTES,
    HS_SCHEDULED,
    NOTE_TO_APPOINTMENT,
    Harness,
)

APPOINTMENT_TO_NOTE = 1206


def _association(appointment_id: str, type_id: int = NOTE_TO_APPOINTMENT, category: str = "HUBSPOT_DEFINED") -> Any:
    return {"to": {"id": appointment_id}, "types": [{"associationCategory": category, "associationTypeId": type_id}]}


def _note(body: str = "Rescheduled from Tue 09:30 to Wed 15:00", **properties: Any) -> dict[str, Any]:
    return {"hs_timestamp": "1772442930250", "hs_note_body": body, **properties}


async def _create(sb: Harness, properties: dict[str, Any], associations: list[Any] | None = None) -> Any:
    payload: dict[str, Any] = {"properties": properties}
    if associations is not None:
        payload["associations"] = associations
    return await sb.hs("POST", HS_NOTES, json=payload)


async def _control_notes(sb: Harness) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = (await sb.client.get("/_sandbox/hubspot/notes")).json()["notes"]
    return notes


async def test_a_note_associated_with_the_looked_up_type_id(sb: Harness) -> None:
    labels = await sb.hs("GET", "/crm/associations/2026-03/notes/appointments/labels")
    [label] = labels.json()["results"]

    response = await _create(sb, _note(hubspot_owner_id="71230001"), [_association(HS_SCHEDULED, label["typeId"])])

    assert response.status_code == 201
    note = response.json()
    assert list(note) == ["id", "properties", "createdAt", "updatedAt", "archived"]
    assert note["properties"]["hs_timestamp"] == "2026-03-02T09:15:30.250Z"
    assert note["properties"]["hs_note_body"] == "Rescheduled from Tue 09:30 to Wed 15:00"
    assert note["properties"]["hubspot_owner_id"] == "71230001"
    [stored] = await _control_notes(sb)
    assert stored["id"] == note["id"]
    assert stored["associations"] == {"appointments": [HS_SCHEDULED]}
    read = await sb.hs("GET", f"{HS_NOTES}/{note['id']}", params={"properties": "hs_note_body"})
    assert read.json()["properties"]["hs_note_body"] == note["properties"]["hs_note_body"]
    listed = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}/associations/notes")
    assert listed.json() == {
        "results": [
            {
                "toObjectId": note["id"],
                "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": APPOINTMENT_TO_NOTE, "label": None}],
            }
        ]
    }
    with_associations = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", params={"associations": "notes"})
    assert with_associations.json()["associations"] == {
        "notes": {"results": [{"id": note["id"], "type": "appointment_to_note"}]}
    }


@pytest.mark.parametrize(
    ("properties", "code", "name"),
    [
        ({"hs_note_body": "no time"}, "REQUIRED_PROPERTY", "hs_timestamp"),
        (_note("x" * 65_537), "INVALID_STRING_LENGTH", "hs_note_body"),
        (_note(hs_timestamp="yesterday"), "INVALID_DATETIME", "hs_timestamp"),
        (_note(hubspot_owner_id="42"), "INVALID_OWNER_ID", "hubspot_owner_id"),
    ],
)
async def test_invalid_notes_are_refused(sb: Harness, properties: dict[str, Any], code: str, name: str) -> None:
    response = await _create(sb, properties, [_association(HS_SCHEDULED)])

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["code"], error["context"]) == (code, {"propertyName": [name]})
    assert await _control_notes(sb) == []


async def test_the_longest_body_and_an_iso_timestamp_are_fine(sb: Harness) -> None:
    response = await _create(sb, _note("x" * 65_536, hs_timestamp="2026-03-02T10:00:00+01:00"))

    assert response.status_code == 201
    assert response.json()["properties"]["hs_timestamp"] == "2026-03-02T09:00:00.000Z"


@pytest.mark.parametrize(
    "association",
    [
        _association(HS_SCHEDULED, 921),
        _association(HS_SCHEDULED, APPOINTMENT_TO_NOTE),
        _association(HS_SCHEDULED, NOTE_TO_APPOINTMENT, "USER_DEFINED"),
    ],
)
async def test_a_wrong_association_type_is_refused_naming_it(sb: Harness, association: Any) -> None:
    response = await _create(sb, _note(), [association])

    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    type_id = str(association["types"][0]["associationTypeId"])
    assert type_id in body["message"]
    assert body["context"] == {"associationTypeId": [type_id]}
    assert await _control_notes(sb) == []


@pytest.mark.parametrize(
    "association",
    [{"to": {"id": HS_SCHEDULED}, "types": []}, {"types": [{"associationTypeId": 1207}]}, "x", {"to": {}, "types": 1}],
)
async def test_malformed_associations_are_refused(sb: Harness, association: Any) -> None:
    response = await _create(sb, _note(), [association])

    assert (response.status_code, response.json()["category"]) == (400, "VALIDATION_ERROR")


async def test_an_association_to_a_missing_appointment_is_refused(sb: Harness) -> None:
    response = await _create(sb, _note(), [_association("99999999999")])

    assert response.status_code == 400
    assert response.json()["context"] == {"ids": ["99999999999"]}
    assert await _control_notes(sb) == []


@pytest.mark.parametrize(
    ("from_type", "to_type", "expected"),
    [
        ("notes", "appointments", [NOTE_TO_APPOINTMENT]),
        ("0-46", "0-421", [NOTE_TO_APPOINTMENT]),
        ("note", "appointment", [NOTE_TO_APPOINTMENT]),
        ("appointments", "notes", [APPOINTMENT_TO_NOTE]),
        ("0-421", "0-46", [APPOINTMENT_TO_NOTE]),
        ("notes", "notes", []),
    ],
)
async def test_labels_between_notes_and_appointments(
    sb: Harness, from_type: str, to_type: str, expected: list[int]
) -> None:
    response = await sb.hs("GET", f"/crm/associations/2026-03/{from_type}/{to_type}/labels")

    assert response.status_code == 200
    assert response.json() == {
        "results": [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None} for type_id in expected]
    }


async def test_labels_for_an_unknown_object_type_are_refused(sb: Harness) -> None:
    response = await sb.hs("GET", "/crm/associations/2026-03/notes/contacts/labels")

    assert (response.status_code, response.json()["category"]) == (400, "VALIDATION_ERROR")


async def test_default_association_answers_both_directions(sb: Harness) -> None:
    note_id = (await _create(sb, _note())).json()["id"]
    sb.clock.advance(seconds=1)

    response = await sb.hs("PUT", f"{HS_NOTES}/{note_id}/associations/default/appointments/{HS_CANCELED}")

    assert response.status_code == 200
    assert response.json() == {
        "status": "COMPLETE",
        "results": [
            {
                "from": {"id": note_id},
                "to": {"id": HS_CANCELED},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1207},
            },
            {
                "from": {"id": HS_CANCELED},
                "to": {"id": note_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1206},
            },
        ],
        "startedAt": "2026-03-02T09:15:31.250Z",
        "completedAt": "2026-03-02T09:15:31.250Z",
    }
    listed = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_CANCELED}/associations/notes")
    assert [result["toObjectId"] for result in listed.json()["results"]] == [note_id]
    again = await sb.hs("PUT", f"{HS_NOTES}/{note_id}/associations/default/appointments/{HS_CANCELED}")
    assert again.status_code == 200
    assert (await _control_notes(sb))[0]["associations"] == {"appointments": [HS_CANCELED]}


@pytest.mark.parametrize("path_type_id", ["1207", "note_to_appointment"])
async def test_typed_association_put(sb: Harness, path_type_id: str) -> None:
    note_id = (await _create(sb, _note())).json()["id"]

    response = await sb.hs("PUT", f"{HS_NOTES}/{note_id}/associations/appointments/{HS_SCHEDULED}/{path_type_id}")

    assert response.status_code == 200
    assert response.json()["id"] == note_id
    assert response.json()["associations"] == {
        "appointments": {"results": [{"id": HS_SCHEDULED, "type": "note_to_appointment"}]}
    }


@pytest.mark.parametrize(("path_type_id", "status"), [("921", 400), ("1206", 400), ("202", 400)])
async def test_typed_association_put_with_a_wrong_type(sb: Harness, path_type_id: str, status: int) -> None:
    note_id = (await _create(sb, _note())).json()["id"]

    response = await sb.hs("PUT", f"{HS_NOTES}/{note_id}/associations/appointments/{HS_SCHEDULED}/{path_type_id}")

    assert response.status_code == status
    assert path_type_id in response.json()["message"]
    assert (await _control_notes(sb))[0]["associations"] == {"appointments": []}


async def test_association_puts_with_unknown_ids_are_not_found(sb: Harness) -> None:
    note_id = (await _create(sb, _note())).json()["id"]

    no_note = await sb.hs("PUT", f"{HS_NOTES}/99999999999/associations/default/appointments/{HS_SCHEDULED}")
    no_appointment = await sb.hs("PUT", f"{HS_NOTES}/{note_id}/associations/appointments/99999999999/1207")
    not_a_note = await sb.hs("PUT", f"{HS_NOTES}/{HS_SCHEDULED}/associations/default/appointments/{HS_SCHEDULED}")

    assert [no_note.status_code, no_appointment.status_code, not_a_note.status_code] == [404, 404, 404]


async def test_association_put_with_specs_in_the_body(sb: Harness) -> None:
    note_id = (await _create(sb, _note())).json()["id"]
    path = f"{HS_NOTES}/{note_id}/associations/appointments/{HS_SCHEDULED}"

    created = await sb.hs("PUT", path, json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1207}])
    refused = await sb.hs("PUT", path, json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 921}])

    assert created.status_code == 201
    assert created.json() == {
        "fromObjectTypeId": "0-46",
        "fromObjectId": note_id,
        "toObjectTypeId": "0-421",
        "toObjectId": HS_SCHEDULED,
        "labels": [],
    }
    assert refused.status_code == 400


async def test_notes_batch_read_and_unassociated_appointments(sb: Harness) -> None:
    first = (await _create(sb, _note("one"))).json()["id"]
    second = (await _create(sb, _note("two"))).json()["id"]

    response = await sb.hs(
        "POST",
        f"{HS_NOTES}/batch/read",
        json={"inputs": [{"id": first}, {"id": second}, {"id": HS_SCHEDULED}], "properties": ["hs_note_body"]},
    )
    empty = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}/associations/notes")

    assert response.status_code == 207
    assert [result["properties"]["hs_note_body"] for result in response.json()["results"]] == ["one", "two"]
    assert response.json()["errors"][0]["context"] == {"ids": [HS_SCHEDULED]}
    assert "NOTE" in response.json()["errors"][0]["message"]
    assert empty.json() == {"results": []}
