"""HubSpot's properties API in the sandbox: GET /crm/properties/2026-03/appointments, custom properties, errors."""

from __future__ import annotations

from sandbox.hubspot.catalogue import APPOINTMENT_PROPERTIES
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import Harness

PROPERTIES = "/crm/properties/2026-03/appointments"


async def test_every_appointment_property_is_listed(sb: Harness) -> None:
    answer = await sb.hs("GET", PROPERTIES)

    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [p["name"] for p in results] == list(APPOINTMENT_PROPERTIES)
    status = next(p for p in results if p["name"] == "hs_appointment_status")
    assert (status["type"], status["fieldType"], status["hubspotDefined"]) == ("enumeration", "select", True)
    assert "CANCELED" in [option["value"] for option in status["options"]]
    assert "X-HubSpot-RateLimit-Remaining" in answer.headers
    # By object type id too; notes have their own list.
    assert (await sb.hs("GET", "/crm/properties/2026-03/0-421")).json() == answer.json()
    notes = (await sb.hs("GET", "/crm/properties/2026-03/notes")).json()["results"]
    assert "hs_note_body" in [p["name"] for p in notes]


async def test_custom_properties_follow_the_built_in_ones(make: MakeSandbox) -> None:
    sb = await make(custom_fields=("hubspot:appointments:visit_priority:enumeration",))
    added = await sb.client.post("/_sandbox/fields/hubspot/appointments", json={"name": "gate_code"})
    assert added.status_code == 200

    results = (await sb.hs("GET", PROPERTIES)).json()["results"]

    custom = [(p["name"], p["type"], p["fieldType"]) for p in results if not p["hubspotDefined"]]
    assert custom == [("visit_priority", "enumeration", "select"), ("gate_code", "string", "text")]
    refused = await sb.client.post("/_sandbox/fields/hubspot/appointments", json={"name": "Gate_Code"})
    assert refused.status_code == 400  # HubSpot's internal names are lower case


async def test_errors_as_hubspot_gives_them(make: MakeSandbox, sb: Harness) -> None:
    no_token = await sb.client.get(PROPERTIES)
    unknown = await sb.hs("GET", "/crm/properties/2026-03/rockets")
    other_version = await sb.hs("GET", "/crm/properties/2099-01/appointments")
    post = await sb.hs("POST", PROPERTIES, json={})

    assert (no_token.status_code, no_token.json()["category"]) == (401, "INVALID_AUTHENTICATION")
    assert (unknown.status_code, unknown.json()["category"]) == (400, "VALIDATION_ERROR")
    assert other_version.status_code == 404
    assert post.status_code == 405


async def test_reading_properties_takes_the_schema_or_an_object_scope(make: MakeSandbox) -> None:
    sb = await make(hubspot_scopes=frozenset({"crm.objects.contacts.write"}))
    refused = await sb.hs("GET", PROPERTIES)
    assert refused.status_code == 403
    assert refused.json()["category"] == "MISSING_SCOPES"
    assert refused.json()["errors"][0]["context"] == {
        "requiredGranularScopes": [
            "crm.schemas.appointments.read",
            "crm.objects.appointments.read",
            "crm.objects.appointments.write",
        ]
    }
    for granted in ("crm.schemas.appointments.read", "crm.objects.appointments.read"):
        sb = await make(hubspot_scopes=frozenset({granted}))
        assert (await sb.hs("GET", PROPERTIES)).status_code == 200, granted
