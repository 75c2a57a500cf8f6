"""HubSpot reads: single objects with and without properties and history, the object paths, batch read limits."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.sandbox.harness import (
    BEN,
    HS_APPOINTMENTS,
    HS_CANCELED,
    HS_COMPLETED,
    HS_RESCHEDULED,
    HS_SCHEDULED,
    Harness,
)

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CREATED = "2026-02-23T09:15:30.250Z"  # seven days before the fake clock's start
BATCH_READ = f"{HS_APPOINTMENTS}/batch/read"
HISTORY_LIMIT = (
    "The maximum number of inputs supported in a batch request for property histories is 50. "
    "Please reduce the number of items and try again"
)


def _ids(count: int) -> list[dict[str, str]]:
    return [{"id": str(60_000_000_000 + index)} for index in range(count)]


async def test_without_properties_only_the_defaults_come_back(sb: Harness) -> None:
    body = await sb.hs_appointment(HS_SCHEDULED)

    assert list(body) == ["id", "properties", "createdAt", "updatedAt", "archived"]
    assert body["id"] == HS_SCHEDULED
    assert body["properties"] == {
        "hs_createdate": CREATED,
        "hs_lastmodifieddate": CREATED,
        "hs_object_id": HS_SCHEDULED,
    }
    assert (body["createdAt"], body["updatedAt"], body["archived"]) == (CREATED, CREATED, False)


async def test_properties_are_strings_null_when_empty_and_unknown_names_are_ignored(sb: Harness) -> None:
    body = await sb.hs_appointment(
        HS_SCHEDULED, properties="hs_appointment_name,hs_appointment_start,hs_duration,hs_pipeline,no_such_thing"
    )

    properties = body["properties"]
    assert properties["hs_appointment_name"] == "AC Repair - James"
    assert properties["hs_appointment_start"] == "2026-03-04T09:30:00.000Z"
    assert properties["hs_duration"] == "3600000"
    assert properties["hs_pipeline"] is None
    assert "no_such_thing" not in properties
    assert {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"} <= set(properties)
    assert all(value is None or isinstance(value, str) for value in properties.values())
    assert "propertiesWithHistory" not in body


async def test_repeated_properties_parameters_work_like_a_comma_list(sb: Harness) -> None:
    response = await sb.hs(
        "GET", f"{HS_APPOINTMENTS}/{HS_CANCELED}?properties=hs_appointment_status&properties=hubspot_owner_id"
    )

    assert response.json()["properties"]["hs_appointment_status"] == "CANCELED"
    assert response.json()["properties"]["hubspot_owner_id"] == "71230001"


async def test_history_comes_newest_first_with_its_sources(sb: Harness) -> None:
    body = await sb.hs_appointment(
        HS_RESCHEDULED, propertiesWithHistory="hs_appointment_start,hs_appointment_end,nonexistent"
    )

    start = body["propertiesWithHistory"]["hs_appointment_start"]
    assert start == [
        {
            "value": "2026-03-05T14:00:00.000Z",
            "timestamp": "2026-03-01T08:15:30.250Z",  # 25 hours before reset
            "sourceType": "INTEGRATION",
            "sourceId": "1160452",
        },
        {
            "value": "2026-03-04T11:00:00.000Z",
            "timestamp": CREATED,
            "sourceType": "CRM_UI",
            "sourceId": f"userId:{BEN}",
            "updatedByUserId": BEN,
        },
    ]
    assert [entry["value"] for entry in body["propertiesWithHistory"]["hs_appointment_end"]] == [
        "2026-03-05T15:30:00.000Z",
        "2026-03-04T12:30:00.000Z",
    ]
    assert list(body["propertiesWithHistory"]) == ["hs_appointment_start", "hs_appointment_end"]
    assert body["properties"]["hs_appointment_start"] == start[0]["value"]
    assert all(ISO_MS.match(entry["timestamp"]) for entry in start)


async def test_seeded_states(sb: Harness) -> None:
    wanted = "hs_appointment_status,hs_appointment_start,hs_appointment_end"
    canceled = await sb.hs_appointment(HS_CANCELED, properties=wanted, propertiesWithHistory="hs_appointment_status")
    completed = await sb.hs_appointment(HS_COMPLETED, properties=wanted)
    scheduled = await sb.hs_appointment(HS_SCHEDULED, propertiesWithHistory="hs_appointment_start")

    assert [entry["value"] for entry in canceled["propertiesWithHistory"]["hs_appointment_status"]] == [
        "CANCELED",
        "SCHEDULED",
    ]
    assert completed["properties"]["hs_appointment_status"] == "COMPLETED"
    assert completed["properties"]["hs_appointment_end"] == "2026-03-01T12:00:00.000Z"
    assert len(scheduled["propertiesWithHistory"]["hs_appointment_start"]) == 1


@pytest.mark.parametrize("path", ["/crm/objects/2026-03/0-421", "/crm/v3/objects/0-421", "/crm/objects/v3/0-421"])
async def test_object_type_id_and_v3_paths_read_the_same_object(sb: Harness, path: str) -> None:
    expected = await sb.hs_appointment(HS_SCHEDULED, properties="hs_appointment_name")

    response = await sb.hs("GET", f"{path}/{HS_SCHEDULED}", params={"properties": "hs_appointment_name"})

    assert response.status_code == 200
    assert response.json() == expected


async def test_v3_needs_the_type_id_for_appointments(sb: Harness) -> None:
    response = await sb.hs("GET", f"/crm/v3/objects/appointments/{HS_SCHEDULED}")

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert response.json()["message"] == "Unable to infer object type from: appointments"


async def test_unknown_id_is_object_not_found(sb: Harness) -> None:
    response = await sb.hs("GET", f"{HS_APPOINTMENTS}/99999999999")

    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"status", "message", "correlationId", "category"}
    assert (body["status"], body["message"], body["category"]) == ("error", "resource not found", "OBJECT_NOT_FOUND")
    uuid.UUID(body["correlationId"])


async def test_unknown_paths_and_methods_answer_in_hubspot_shape(sb: Harness) -> None:
    unknown = await sb.hs("GET", "/crm/objects/2026-03/appointments/1/2/3/4/5/6")
    wrong_version = await sb.hs("GET", f"/crm/objects/2099-01/appointments/{HS_SCHEDULED}")
    wrong_method = await sb.hs("PUT", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", json={})

    assert (unknown.status_code, unknown.json()["status"]) == (404, "error")
    assert wrong_version.status_code == 404
    assert (wrong_method.status_code, wrong_method.json()["category"]) == (405, "VALIDATION_ERROR")


async def test_batch_read_returns_the_objects_in_input_order(sb: Harness) -> None:
    response = await sb.hs(
        "POST",
        BATCH_READ,
        json={"inputs": [{"id": HS_CANCELED}, {"id": HS_SCHEDULED}], "properties": ["hs_appointment_status"]},
    )

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["status", "results", "startedAt", "completedAt"]
    assert body["status"] == "COMPLETE"
    assert [result["id"] for result in body["results"]] == [HS_CANCELED, HS_SCHEDULED]
    assert [result["properties"]["hs_appointment_status"] for result in body["results"]] == ["CANCELED", "SCHEDULED"]
    assert "propertiesWithHistory" not in body["results"][0]


async def test_batch_read_with_missing_ids_is_a_207(sb: Harness) -> None:
    inputs = [{"id": HS_SCHEDULED}, {"id": "99999999999"}, {"id": 88888888888}]

    response = await sb.hs(
        "POST", BATCH_READ, json={"inputs": inputs, "propertiesWithHistory": ["hs_appointment_start"]}
    )

    assert response.status_code == 207
    body = response.json()
    assert list(body) == ["status", "results", "numErrors", "errors", "startedAt", "completedAt"]
    assert [result["id"] for result in body["results"]] == [HS_SCHEDULED]
    assert "hs_appointment_start" in body["results"][0]["propertiesWithHistory"]
    assert body["numErrors"] == 1
    [error] = body["errors"]
    assert (error["status"], error["category"]) == ("error", "OBJECT_NOT_FOUND")
    assert error["context"] == {"ids": ["99999999999", "88888888888"]}
    assert "APPOINTMENT" in error["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": _ids(101)}, None),
        ({"inputs": _ids(51), "propertiesWithHistory": ["hs_appointment_start"]}, HISTORY_LIMIT),
        ({"inputs": "nope"}, None),
        ({"inputs": [{"idx": "1"}]}, None),
        ({"inputs": _ids(1), "idProperty": "hs_appointment_name"}, None),
    ],
)
async def test_batch_read_limits_and_bad_bodies_are_validation_errors(
    sb: Harness, body: dict[str, Any], message: str | None
) -> None:
    response = await sb.hs("POST", BATCH_READ, json=body)

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    if message is not None:
        assert response.json()["message"] == message


@pytest.mark.parametrize(("count", "history"), [(100, False), (50, True)])
async def test_batch_read_accepts_up_to_the_limits(sb: Harness, count: int, history: bool) -> None:
    inputs = [{"id": HS_SCHEDULED}, *_ids(count - 1)]
    body: dict[str, Any] = {"inputs": inputs, "properties": []}
    if history:
        body["propertiesWithHistory"] = ["hs_appointment_start"]

    response = await sb.hs("POST", BATCH_READ, json=body)

    assert response.status_code == 207
    assert len(response.json()["errors"][0]["context"]["ids"]) == count - 1


async def test_archived_objects_are_read_only_with_archived_true(sb: Harness) -> None:
    deleted = await sb.hs("DELETE", f"{HS_APPOINTMENTS}/{HS_CANCELED}")

    gone = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_CANCELED}")
    archived = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_CANCELED}", params={"archived": "true"})
    batch = await sb.hs("POST", f"{BATCH_READ}?archived=true", json={"inputs": [{"id": HS_CANCELED}]})
    live = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", params={"archived": "true"})

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert gone.status_code == 404
    assert archived.status_code == 200
    assert (archived.json()["archived"], archived.json()["archivedAt"]) == (True, "2026-03-02T09:15:30.250Z")
    assert batch.status_code == 200
    assert live.status_code == 404
