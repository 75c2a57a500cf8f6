"""HubSpotClient.search_modified against the in-process sandbox: the window, its order and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
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
