"""Custom appointment properties on records: written by type, kept with history, read back, and webhooked."""

from __future__ import annotations

import pytest

from sandbox.hubspot.custom_properties import FIRST_CUSTOM_SUBSCRIPTION_ID
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import BEN, HS_APPOINTMENTS, HS_SCHEDULED, HUBSPOT_FAST, Harness

CUSTOM = (
    "hubspot:appointments:visit_priority",
    "hubspot:appointments:visits:number",
    "hubspot:appointments:confirmed:bool",
    "hubspot:appointments:visit_day:date",
    "hubspot:appointments:called_at:datetime",
)
CONTROL = "/_sandbox/hubspot/appointments"


@pytest.fixture
async def custom(make: MakeSandbox) -> Harness:
    return await make(**HUBSPOT_FAST, custom_fields=CUSTOM)


async def test_a_patch_stores_custom_properties_by_type_and_returns_them(custom: Harness) -> None:
    properties = {"visit_priority": "high", "visits": 3, "confirmed": True, "visit_day": "2026-03-09"}

    response = await custom.hs("PATCH", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", json={"properties": properties})

    assert response.status_code == 200, response.text
    assert response.json()["properties"]["visit_priority"] == "high"
    record = await custom.hs_appointment(
        HS_SCHEDULED, properties="visit_priority,visits,confirmed,visit_day,called_at", propertiesWithHistory="visits"
    )
    shown = record["properties"]
    assert (shown["visit_priority"], shown["visits"], shown["confirmed"], shown["visit_day"]) == (
        "high",
        "3",
        "true",
        "2026-03-09",
    )
    assert shown["called_at"] is None
    [entry] = record["propertiesWithHistory"]["visits"]
    assert (entry["value"], entry["sourceType"]) == ("3", "INTEGRATION")


async def test_custom_properties_are_checked_like_built_in_ones(custom: Harness) -> None:
    properties = {"visits": "many", "confirmed": "maybe", "visit_day": "9 March", "called_at": "soon", "colour": "red"}

    response = await custom.hs("PATCH", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", json={"properties": properties})

    assert response.status_code == 400
    codes = {error["context"]["propertyName"][0]: error["code"] for error in response.json()["errors"]}
    assert codes == {
        "visits": "INVALID_NUMBER",
        "confirmed": "INVALID_BOOLEAN",
        "visit_day": "INVALID_DATE",
        "called_at": "INVALID_DATETIME",
        "colour": "PROPERTY_DOESNT_EXIST",
    }


async def test_an_unregistered_name_is_still_refused(hs: Harness) -> None:
    response = await hs.hs("PATCH", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", json={"properties": {"visit_priority": "x"}})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"


async def test_a_control_change_of_a_custom_property_sends_its_property_change(custom: Harness) -> None:
    body = {"user_id": BEN, "properties": {"visit_priority": "urgent", "called_at": "2026-03-02T10:00:00Z"}}

    response = await custom.client.patch(f"{CONTROL}/{HS_SCHEDULED}", json=body)
    await custom.settle()

    assert response.status_code == 200, response.text
    assert response.json()["properties"]["visit_priority"] == "urgent"
    events = {event["propertyName"]: event for event in custom.webhook_events()}
    assert events["visit_priority"]["propertyValue"] == "urgent"
    assert events["visit_priority"]["subscriptionId"] == FIRST_CUSTOM_SUBSCRIPTION_ID
    urgent = events["visit_priority"]
    assert (urgent["changeSource"], urgent["sourceId"]) == ("CRM_UI", f"userId:{BEN}")
    assert events["called_at"]["propertyValue"] == "1772445600000"
    listed = (await custom.client.get("/_sandbox/hubspot/subscriptions")).json()["results"]
    assert [result["propertyName"] for result in listed][-len(CUSTOM) :] == [spec.split(":")[2] for spec in CUSTOM]


async def test_creation_and_run_time_fields_take_custom_properties(hs: Harness) -> None:
    added = await hs.client.post("/_sandbox/fields/hubspot/appointments", json={"name": "gate_code"})
    assert added.status_code < 300, added.text

    created = await hs.client.post(CONTROL, json={"properties": {"gate_code": "4711"}})
    api = await hs.hs("POST", HS_APPOINTMENTS, json={"properties": {"hs_appointment_name": "A", "gate_code": "12"}})
    await hs.settle()

    assert created.status_code == 201 and created.json()["properties"]["gate_code"] == "4711"
    assert api.status_code == 201 and api.json()["properties"]["gate_code"] == "12"
    assert {e["propertyValue"] for e in hs.webhook_events() if e.get("propertyName") == "gate_code"} == {"4711", "12"}
