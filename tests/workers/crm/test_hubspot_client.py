"""HubSpotClient.search_modified against the in-process sandbox: the window, its order and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from workers.crm.hubspot import HubSpotClient


async def test_search_modified_lists_a_window_oldest_first_page_by_page() -> None:
    app = create_sandbox(SandboxConfig(hubspot_search_per_s=1000))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        since = datetime.now(UTC) - timedelta(seconds=1)
        ids = []
        for n in range(3):
            body = {"properties": {"hs_appointment_name": f"S{n}"}}
            ids.append((await http.post("/_sandbox/hubspot/appointments", json=body)).json()["id"])
        until = datetime.now(UTC) + timedelta(seconds=1)
        hubspot = HubSpotClient(http, api_base="http://sandbox", token=SecretStr("sandbox-hubspot-token"))

        first = await hubspot.search_modified(since, until, limit=2)
        second = await hubspot.search_modified(since, until, limit=2, after=first.next_after)
        before = await hubspot.search_modified(since - timedelta(days=30), since, limit=200)

    assert first.total == 3 and [r.record_id for r in first.records] == ids[:2]
    assert [r.record_id for r in second.records] == ids[2:] and second.next_after is None
    assert first.records[0].modified_time <= first.records[1].modified_time
    assert not set(ids) & {r.record_id for r in before.records}


async def test_update_appointment_patches_its_properties() -> None:
    from workers.errors import CrmNotFoundError, CrmRejectedError

    sent: list[tuple[str, str, bytes]] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path, request.content))
        if request.url.path.endswith("/404"):
            return httpx.Response(404, json={"status": "error", "category": "OBJECT_NOT_FOUND", "message": "gone"})
        if request.url.path.endswith("/400"):
            return httpx.Response(400, json={"status": "error", "category": "VALIDATION_ERROR", "message": "bad"})
        return httpx.Response(200, json={"id": "7", "properties": {"hs_appointment_location": "Depot"}})

    http = httpx.AsyncClient(transport=httpx.MockTransport(api))
    hubspot = HubSpotClient(http, api_base="https://api.example", token=SecretStr("t"))

    assert await hubspot.update_appointment("7", {"hs_appointment_location": "Depot"}) == "7"
    with pytest.raises(CrmRejectedError) as refused:
        await hubspot.update_appointment("400", {"nope": "x"})
    with pytest.raises(CrmNotFoundError):
        await hubspot.update_appointment("404", {"hs_appointment_location": "x"})

    assert sent[0] == (
        "PATCH",
        "/crm/objects/2026-03/appointments/7",
        b'{"properties":{"hs_appointment_location":"Depot"}}',
    )
    assert refused.value.code == "VALIDATION_ERROR"


async def test_update_appointment_against_the_sandbox_is_stored_and_notified() -> None:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        created = await http.post("/_sandbox/hubspot/appointments", json={"properties": {"hs_appointment_name": "S"}})
        appointment_id = created.json()["id"]
        hubspot = HubSpotClient(http, api_base="http://sandbox", token=SecretStr("sandbox-hubspot-token"))

        await hubspot.update_appointment(appointment_id, {"hs_appointment_status": "CANCELED"})
        record = await hubspot.get_appointment(appointment_id)

    assert record.fields["hs_appointment_status"] == "CANCELED"
