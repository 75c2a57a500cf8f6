"""HubSpot writes: PATCH validation, history and derived values, creation, and what the answers contain."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.harness import HS_APPOINTMENTS, HS_RESCHEDULED, HS_SCHEDULED, Harness

NOW = "2026-03-02T09:15:30.250Z"  # the fake clock
ONE = f"{HS_APPOINTMENTS}/{HS_SCHEDULED}"
TIMES = "hs_appointment_start,hs_appointment_end,hs_duration"


async def _patch(sb: Harness, properties: dict[str, Any], path: str = ONE) -> Any:
    return await sb.hs("PATCH", path, json={"properties": properties})


async def test_moving_the_start_keeps_the_duration_and_records_history(sb: Harness) -> None:
    sb.clock.advance(minutes=5)

    response = await _patch(sb, {"hs_appointment_start": "2026-03-10T15:00:00Z"})

    assert response.status_code == 200
    body = response.json()
    assert body["properties"]["hs_appointment_start"] == "2026-03-10T15:00:00.000Z"
    assert body["properties"]["hs_appointment_end"] == "2026-03-10T16:00:00.000Z"
    assert "hs_duration" not in body["properties"]  # unchanged, so not in the answer
    assert body["properties"]["hs_lastmodifieddate"] == "2026-03-02T09:20:30.250Z"
    assert body["updatedAt"] == "2026-03-02T09:20:30.250Z"
    record = await sb.hs_appointment(HS_SCHEDULED, propertiesWithHistory="hs_appointment_start,hs_appointment_end")
    newest = record["propertiesWithHistory"]["hs_appointment_start"][0]
    assert newest == {
        "value": "2026-03-10T15:00:00.000Z",
        "timestamp": "2026-03-02T09:20:30.250Z",
        "sourceType": "INTEGRATION",
        "sourceId": "54321",
    }
    assert len(record["propertiesWithHistory"]["hs_appointment_end"]) == 2
    assert record["properties"]["hs_lastmodifieddate"] == "2026-03-02T09:20:30.250Z"
    assert (await sb.hs_appointment(HS_SCHEDULED, properties="hs_duration"))["properties"]["hs_duration"] == "3600000"


async def test_moving_the_end_alone_changes_the_duration(sb: Harness) -> None:
    response = await _patch(sb, {"hs_appointment_end": "2026-03-04T11:00:00.000Z"})

    properties = response.json()["properties"]
    assert properties["hs_duration"] == str(90 * 60 * 1000)
    assert "hs_appointment_start" not in properties  # the answer holds the defaults, the given and the changed


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("1773154800000", "2026-03-10T15:00:00.000Z"),
        (1773154800000, "2026-03-10T15:00:00.000Z"),
        ("2026-03-10T16:00:00+01:00", "2026-03-10T15:00:00.000Z"),
        ("2026-03-10T15:00:00.123456Z", "2026-03-10T15:00:00.123Z"),
    ],
)
async def test_datetimes_take_iso_or_epoch_milliseconds(sb: Harness, given: Any, stored: str) -> None:
    response = await _patch(sb, {"hs_appointment_start": given})

    assert response.status_code == 200
    assert response.json()["properties"]["hs_appointment_start"] == stored


async def test_unknown_and_read_only_properties_are_refused_and_nothing_changes(sb: Harness) -> None:
    response = await _patch(
        sb,
        {
            "hs_appointment_start": "2026-03-10T15:00:00Z",
            "hs_colour": "red",
            "hs_object_id": "1",
            "hs_lastmodifieddate": NOW,
            "hs_createdate": NOW,
        },
    )

    assert response.status_code == 400
    body = response.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: [")
    assert [(error["code"], error["context"]) for error in body["errors"]] == [
        ("PROPERTY_DOESNT_EXIST", {"propertyName": ["hs_colour"]}),
        ("READ_ONLY_VALUE", {"propertyName": ["hs_object_id"]}),
        ("READ_ONLY_VALUE", {"propertyName": ["hs_lastmodifieddate"]}),
        ("READ_ONLY_VALUE", {"propertyName": ["hs_createdate"]}),
    ]
    record = await sb.hs_appointment(HS_SCHEDULED, properties=TIMES)
    assert record["properties"]["hs_appointment_start"] == "2026-03-04T09:30:00.000Z"


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"hs_appointment_start": "next tuesday"}, "INVALID_DATETIME"),
        ({"hs_appointment_start": "2026-03-10T15:00:00"}, "INVALID_DATETIME"),
        ({"hs_appointment_end": "2026-02-30T10:00:00Z"}, "INVALID_DATETIME"),
        ({"hs_appointment_status": "CANCELLED"}, "INVALID_OPTION"),
        ({"hubspot_owner_id": "123"}, "INVALID_OWNER_ID"),
        ({"hs_duration": "60"}, "READ_ONLY_VALUE"),
        ({"hs_appointment_name": {"first": "x"}}, "INVALID_PROPERTY_VALUE"),
    ],
)
async def test_invalid_values_are_validation_errors(sb: Harness, properties: dict[str, Any], code: str) -> None:
    response = await _patch(sb, properties)

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == code
    assert error["context"] == {"propertyName": list(properties)}


@pytest.mark.parametrize("content", [b"{}", b"not json", b"", b'{"properties": ["hs_appointment_name"]}'])
async def test_bodies_without_a_properties_object_are_refused(sb: Harness, content: bytes) -> None:
    response = await sb.hs("PATCH", ONE, content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


async def test_same_value_records_nothing_and_empty_string_clears(sb: Harness) -> None:
    same = await _patch(sb, {"hs_appointment_name": "AC Repair - James"})
    cleared = await _patch(sb, {"hs_appointment_location": ""})

    assert same.json()["updatedAt"] == "2026-02-23T09:15:30.250Z"
    assert cleared.json()["properties"]["hs_appointment_location"] is None
    record = await sb.hs_appointment(HS_SCHEDULED, propertiesWithHistory="hs_appointment_name,hs_appointment_location")
    assert len(record["propertiesWithHistory"]["hs_appointment_name"]) == 1
    assert record["propertiesWithHistory"]["hs_appointment_location"][0]["value"] == ""


async def test_patching_an_unknown_appointment_is_not_found(sb: Harness) -> None:
    response = await _patch(sb, {"hs_appointment_name": "x"}, f"{HS_APPOINTMENTS}/99999999999")

    assert (response.status_code, response.json()["category"]) == (404, "OBJECT_NOT_FOUND")


async def test_create_needs_a_name_and_answers_201(sb: Harness) -> None:
    missing = await sb.hs("POST", HS_APPOINTMENTS, json={"properties": {"hs_appointment_status": "SCHEDULED"}})
    created = await sb.hs(
        "POST",
        HS_APPOINTMENTS,
        json={
            "properties": {
                "hs_appointment_name": "Annual checkup",
                "hs_appointment_start": "2026-06-01T09:00:00Z",
                "hs_appointment_end": "2026-06-01T10:00:00Z",
                "hs_appointment_status": "SCHEDULED",
            }
        },
    )

    assert missing.status_code == 400
    assert [(error["code"], error["context"]) for error in missing.json()["errors"]] == [
        ("REQUIRED_PROPERTY", {"propertyName": ["hs_appointment_name"]})
    ]
    assert created.status_code == 201
    body = created.json()
    assert body["id"].isdigit()
    assert body["properties"]["hs_appointment_start"] == "2026-06-01T09:00:00.000Z"
    assert body["properties"]["hs_object_id"] == body["id"]
    assert (body["createdAt"], body["archived"]) == (NOW, False)
    read = await sb.hs_appointment(body["id"], properties="hs_appointment_name,hs_duration")
    assert read["properties"]["hs_appointment_name"] == "Annual checkup"
    assert read["properties"]["hs_duration"] == "3600000"


async def test_writes_are_counted_as_crm_writes_but_batch_reads_are_not(sb: Harness) -> None:
    await _patch(sb, {"hs_appointment_name": "x"}, f"{HS_APPOINTMENTS}/{HS_RESCHEDULED}")
    await sb.hs("POST", f"{HS_APPOINTMENTS}/batch/read", json={"inputs": [{"id": HS_SCHEDULED}]})
    await sb.hs("GET", ONE)

    log = (await sb.client.get("/_sandbox/requests")).json()

    assert log["crm_writes"] == 1
    assert log["by_endpoint"] == {
        "PATCH /crm/objects/2026-03/appointments/{id}": 1,
        "POST /crm/objects/2026-03/appointments/batch/read": 1,
        "GET /crm/objects/2026-03/appointments/{id}": 1,
    }
    assert log["requests"][0]["body"] == {"properties": {"hs_appointment_name": "x"}}
