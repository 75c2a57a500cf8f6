"""HubSpot's control endpoints: loose creation, UI deletion, the notes view, subscriptions, and reset."""

from __future__ import annotations

from tests.sandbox.harness import BEN, HS_APPOINTMENTS, HS_NOTES, HS_SCHEDULED, Harness

CONTROL = "/_sandbox/hubspot/appointments"


async def test_loose_creation_fills_defaults_as_a_ui_user(hs: Harness) -> None:
    response = await hs.client.post(CONTROL, json={"user_id": BEN})
    await hs.settle()

    assert response.status_code == 201
    record = response.json()
    assert record["properties"]["hs_appointment_name"] == "New Appointment"
    assert record["properties"]["hs_appointment_start"] == "2026-03-03T10:00:00.000Z"
    assert record["properties"]["hs_appointment_end"] == "2026-03-03T11:00:00.000Z"
    assert record["properties"]["hs_appointment_status"] == "SCHEDULED"
    assert record["properties"]["hubspot_owner_id"] == str(BEN)
    assert record["properties"]["hs_pipeline"] is None
    events = hs.webhook_events()
    assert events[0]["subscriptionType"] == "object.creation"
    assert {event["sourceId"] for event in events} == {f"userId:{BEN}"}
    history = await hs.hs_appointment(record["id"], propertiesWithHistory="hs_appointment_name")
    assert history["propertiesWithHistory"]["hs_appointment_name"][0]["updatedByUserId"] == BEN


async def test_creation_with_a_chosen_id_and_bad_input(hs: Harness) -> None:
    chosen = await hs.client.post(CONTROL, json={"id": "777", "properties": {"hs_appointment_name": "Fixed"}})
    taken = await hs.client.post(CONTROL, json={"id": HS_SCHEDULED})
    invalid = await hs.client.post(CONTROL, json={"properties": {"hs_appointment_start": "soon"}})
    not_json = await hs.client.post(CONTROL, content=b"[1]")

    assert (chosen.status_code, chosen.json()["id"]) == (201, "777")
    assert (await hs.hs_appointment("777", properties="hs_appointment_name"))["properties"]["hs_appointment_name"] == (
        "Fixed"
    )
    assert taken.status_code == 400
    assert invalid.status_code == 400
    assert invalid.json()["detail"]["category"] == "VALIDATION_ERROR"
    assert not_json.status_code == 400


async def test_ui_deletion_sends_object_deletion(hs: Harness) -> None:
    response = await hs.client.request("DELETE", f"{CONTROL}/{HS_SCHEDULED}", json={"user_id": BEN})
    await hs.settle()

    assert response.status_code == 204
    [event] = hs.webhook_events()
    assert (event["subscriptionType"], event["changeSource"]) == ("object.deletion", "CRM_UI")
    assert event["sourceId"] == f"userId:{BEN}"
    assert (await hs.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}")).status_code == 404


async def test_subscriptions_are_listed(hs: Harness) -> None:
    results = (await hs.client.get("/_sandbox/hubspot/subscriptions")).json()["results"]

    assert [(result["subscriptionType"], result["propertyName"]) for result in results] == [
        ("object.creation", None),
        ("object.deletion", None),
        ("object.propertyChange", "hs_appointment_start"),
        ("object.propertyChange", "hs_appointment_end"),
        ("object.propertyChange", "hs_appointment_status"),
    ]
    assert len({result["id"] for result in results}) == 5
    assert {result["objectTypeId"] for result in results} == {"0-421"}


async def test_reset_restores_the_hubspot_portal(hs: Harness) -> None:
    note = {"properties": {"hs_timestamp": "1", "hs_note_body": "x"}}
    await hs.hs("POST", HS_NOTES, json=note)
    await hs.hs("PATCH", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", json={"properties": {"hs_appointment_status": "NO_SHOW"}})
    await hs.settle()
    hs.clock.advance(days=30)

    await hs.client.post("/_sandbox/reset")

    assert (await hs.client.get("/_sandbox/hubspot/notes")).json() == {"count": 0, "notes": []}
    assert (await hs.client.get("/_sandbox/hubspot/webhooks")).json()["count"] == 0
    record = await hs.hs_appointment(HS_SCHEDULED, properties="hs_appointment_status,hs_appointment_start")
    assert record["properties"]["hs_appointment_status"] == "SCHEDULED"
    assert record["properties"]["hs_appointment_start"] == "2026-04-03T09:30:00.000Z"
    created = await hs.hs("POST", HS_NOTES, json=note)
    assert created.json()["id"] == "51204100001"
