"""Sweeps of records crmflow never saw: only what happened within the sweep's window is logged, all of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import run_worker
from tests.workers.test_sweep import SOON, Sandbox, client_of
from workers import sources
from workers.sweep import sweep_source

# Seeds rescheduled a day before the sandbox's reset (sandbox/zoho/seed.py, sandbox/hubspot/seed.py).
ZOHO_RESCHEDULED_YESTERDAY = "5545974000002555012"
HUBSPOT_RESCHEDULED_YESTERDAY = "51204030002"


@pytest.fixture
async def crm() -> AsyncIterator[Sandbox]:
    app = create_sandbox(SandboxConfig(hubspot_search_per_s=1000))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Sandbox(http)


async def sweep(redis: ArqRedis, redis_url: str, crm: Sandbox, source: str, since: datetime) -> None:
    declared = sources.source_named(source)
    assert declared is not None
    client = client_of(source, redis, redis_url, crm.http)
    [result] = await sweep_source(redis, declared, client, now=datetime.now(UTC), lookback_s=60, since=since)
    assert result.complete and result.queued == 1, result.summary()
    await run_worker(redis_url, crm.http)


async def test_an_edit_of_a_record_rescheduled_before_the_window_logs_nothing(
    redis: ArqRedis, redis_url: str, crm: Sandbox
) -> None:
    # Each record still describes its reschedule of yesterday; an unrelated edit now is what the sweep finds.
    since = datetime.now(UTC) - timedelta(seconds=1)
    body = {"data": [{"id": ZOHO_RESCHEDULED_YESTERDAY, "Address": "5 Other Street"}]}
    assert (await crm.http.put("/crm/v7/Appointments__s", json=body, headers=await crm.zoho_headers())).is_success
    edit = {"properties": {"hs_appointment_location": "5 Other Street"}}
    assert (
        await crm.http.patch(f"/_sandbox/hubspot/appointments/{HUBSPOT_RESCHEDULED_YESTERDAY}", json=edit)
    ).is_success

    await sweep(redis, redis_url, crm, "zoho", since)
    await sweep(redis, redis_url, crm, "hubspot", since)

    assert await crm.zoho_rows(ZOHO_RESCHEDULED_YESTERDAY) == 0
    assert await crm.notes(HUBSPOT_RESCHEDULED_YESTERDAY) == 0


async def test_a_record_created_and_moved_twice_within_the_window_gets_a_note_for_each_move(
    redis: ArqRedis, redis_url: str, crm: Sandbox
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    created = {"properties": {"hs_appointment_name": "Twice", "hs_appointment_start": SOON.isoformat()}}
    record_id = str((await crm.http.post("/_sandbox/hubspot/appointments", json=created)).json()["id"])
    await crm.hubspot_reschedule(record_id, 1)
    await crm.hubspot_reschedule(record_id, 2)

    await sweep(redis, redis_url, crm, "hubspot", since)

    notes = (await crm.http.get("/_sandbox/hubspot/notes")).json()["notes"]
    bodies = [note["properties"]["hs_note_body"] for note in notes if record_id in note["associations"]["appointments"]]
    assert len(bodies) == 2
    assert (SOON + timedelta(days=1)).strftime("%Y-%m-%d") in bodies[0]
    assert (SOON + timedelta(days=2)).strftime("%Y-%m-%d") in bodies[1]
