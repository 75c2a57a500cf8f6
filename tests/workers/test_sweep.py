"""Sweep: the window, the events and the cursor (pure), and sweeps against the in-process sandbox and real Redis:
missed reschedules logged once, nothing logged again, and a sweep that crashes half-way resumes without gaps."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change, run_worker, worker_config
from workers import keys, sources
from workers.contract import ChangeEvent
from workers.errors import CrmRejectedError, CrmTransientError
from workers.record import Modified, ModifiedPage
from workers.sweep import (
    SWEEP_OVERLAP,
    Window,
    cursor_after,
    epoch_ms,
    moves_cursor,
    read_cursor,
    sweep_events,
    sweep_module,
    sweep_source,
    sweep_window,
)
from workers.sweep_paging import ListingTooLargeError

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
SOON = (datetime.now(UTC) + timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)

# --- pure ------------------------------------------------------------------------------------------------


def test_the_window_starts_at_since_else_before_the_cursor_else_a_lookback_ago() -> None:
    cursor = epoch_ms(NOW - timedelta(minutes=10))
    assert sweep_window(now=NOW, cursor_ms=None, lookback_s=86_400) == Window(NOW - timedelta(days=1), NOW)
    assert (
        sweep_window(now=NOW, cursor_ms=cursor, lookback_s=86_400).since == NOW - timedelta(minutes=10) - SWEEP_OVERLAP
    )
    since = NOW - timedelta(days=3)
    assert sweep_window(now=NOW, cursor_ms=cursor, lookback_s=1, since=since).since == since
    assert sweep_window(now=NOW, cursor_ms=epoch_ms(NOW + timedelta(hours=1)), lookback_s=1).since <= NOW


def test_sweep_events_are_updates_keyed_by_record_and_modified_time() -> None:
    listed = [Modified("7", NOW), Modified("8", NOW - timedelta(seconds=1))]

    events = sweep_events("zoho", "Appointments__s", listed, NOW - timedelta(hours=1))
    # Another window listing the same change maps to the same job.
    again = sweep_events("zoho", "Appointments__s", listed[:1], NOW - timedelta(hours=2))

    assert (events[0].operation, events[0].origin, events[0].notified_at_ms) == ("update", "sweep", epoch_ms(NOW))
    assert events[0].job_id() == again[0].job_id() == f"zoho:Appointments__s:7:update:{epoch_ms(NOW)}"
    assert events[0].model_dump()["origin"] == "sweep"
    assert events[0].since_ms == epoch_ms(NOW - timedelta(hours=1))


def test_a_notification_job_carries_no_origin_key() -> None:
    event = ChangeEvent(source="zoho", module="M", record_id="1", operation="update", notified_at_ms=5)
    assert not {"origin", "replay", "since_ms"} & set(event.model_dump())
    assert ChangeEvent.model_validate(event.model_dump()).origin == "notification"


def test_the_cursor_moves_only_with_pages_that_cover_the_window_and_never_past_its_end() -> None:
    window = Window(NOW - timedelta(hours=1), NOW)
    assert cursor_after(window, None) is None
    assert cursor_after(window, NOW - timedelta(minutes=5)) == NOW - timedelta(minutes=5)
    assert cursor_after(window, NOW + timedelta(minutes=5)) == NOW


# --- against the sandbox and Redis ---------------------------------------------------------------------


class Sandbox:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._zoho: dict[str, str] = {}

    async def zoho_headers(self) -> dict[str, str]:
        if not self._zoho:
            answer = await self.http.post("/oauth/v2/token", data=SandboxConfig().refresh_form())
            self._zoho = {"Authorization": f"Zoho-oauthtoken {answer.json()['access_token']}"}
        return self._zoho

    async def zoho_appointment(self, n: int) -> str:
        fields = {"Appointment_Name": f"Sweep {n}", "Appointment_Start_Time": (SOON + timedelta(hours=n)).isoformat()}
        answer = await self.http.post("/_sandbox/appointments", json=fields)
        return str(answer.json()["data"][0]["id"])

    async def zoho_reschedule(self, record_id: str, days: int) -> None:
        body = {"data": [{"id": record_id, "Appointment_Start_Time": (SOON + timedelta(days=days)).isoformat()}]}
        answer = await self.http.put("/crm/v7/Appointments__s", json=body, headers=await self.zoho_headers())
        assert answer.status_code == 200, answer.text

    async def zoho_rows(self, record_id: str) -> int:
        rows = (await self.http.get("/_sandbox/history")).json()["data"]
        return sum(row["Appointment_Name"]["id"] == record_id for row in rows)

    async def hubspot_appointment(self, n: int) -> str:
        body = {"properties": {"hs_appointment_name": f"Sweep {n}"}}
        return str((await self.http.post("/_sandbox/hubspot/appointments", json=body)).json()["id"])

    async def hubspot_reschedule(self, record_id: str, days: int) -> None:
        body = {"properties": {"hs_appointment_start": (SOON + timedelta(days=days)).isoformat()}}
        answer = await self.http.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=body)
        assert answer.status_code == 200, answer.text

    async def notes(self, record_id: str) -> int:
        notes = (await self.http.get("/_sandbox/hubspot/notes")).json()["notes"]
        return sum(record_id in note["associations"]["appointments"] for note in notes)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    app = create_sandbox(SandboxConfig(hubspot_search_per_s=1000))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Sandbox(http)


def client_of(source: str, redis: ArqRedis, redis_url: str, http: httpx.AsyncClient) -> Any:
    declared = sources.source_named(source)
    assert declared is not None
    return declared.connect(worker_config(redis_url), redis, http)


async def test_missed_zoho_reschedules_are_logged_once_and_a_notified_one_not_again(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    notified, missed = await sandbox.zoho_appointment(1), await sandbox.zoho_appointment(2)
    await sandbox.zoho_reschedule(notified, 1)
    await enqueue_change(redis, "zoho", "Appointments__s", notified)
    await run_worker(redis_url, sandbox.http)
    await sandbox.zoho_reschedule(missed, 2)
    zoho = sources.source_named("zoho")
    assert zoho is not None
    client = client_of("zoho", redis, redis_url, sandbox.http)

    first = await sweep_source(redis, zoho, client, now=datetime.now(UTC), lookback_s=60, since=since)
    await run_worker(redis_url, sandbox.http)
    second = await sweep_source(redis, zoho, client, now=datetime.now(UTC), lookback_s=60)
    await run_worker(redis_url, sandbox.http)

    assert first[0].complete and first[0].queued >= 2
    assert second[0].complete and second[0].queued == 0 and second[0].already_queued >= 2
    assert (await sandbox.zoho_rows(notified), await sandbox.zoho_rows(missed)) == (1, 1)
    assert await read_cursor(redis, "zoho", "Appointments__s") == epoch_ms(second[0].window.until)


def crashing_after(module: Any, pages: int) -> Any:
    """The module with a listing that fails after `pages` pages (a crash between pages)."""

    async def listing(client: Any, since: datetime, until: datetime, size: int) -> AsyncIterator[ModifiedPage]:
        count = 0
        async for page in module.list_modified(client, since, until, size):
            if count == pages:
                raise CrmTransientError("the sweep's process died here", code="CRASH")
            count += 1
            yield page

    return dataclasses.replace(module, list_modified=listing)


@pytest.mark.parametrize("source", ["hubspot", "zoho"])
async def test_a_sweep_that_crashes_half_way_resumes_without_gaps_or_doubles(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox, source: str
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    declared = sources.source_named(source)
    assert declared is not None
    module = declared.modules[0]
    make = sandbox.hubspot_appointment if source == "hubspot" else sandbox.zoho_appointment
    move = sandbox.hubspot_reschedule if source == "hubspot" else sandbox.zoho_reschedule
    ids = [await make(n) for n in range(7)]
    for n, record_id in enumerate(ids):
        await move(record_id, n + 1)
    client = client_of(source, redis, redis_url, sandbox.http)
    window = Window(since, datetime.now(UTC))

    crashed = await sweep_module(redis, source, crashing_after(module, 2), client, window, page_size=2)
    cursor = await read_cursor(redis, source, module.name)
    await run_worker(redis_url, sandbox.http)  # the pages queued before the crash are processed meanwhile
    resumed = await sweep_source(redis, declared, client, now=datetime.now(UTC), lookback_s=60, since=None)
    await run_worker(redis_url, sandbox.http)

    assert not crashed.complete and crashed.pages == 2 and "CRASH" in (crashed.error or "")
    if source == "hubspot":  # oldest first: the cursor moved over the two queued pages, not beyond
        assert cursor is not None and epoch_ms(since) < cursor < epoch_ms(window.until)
        assert resumed[0].window.since == datetime.fromtimestamp(cursor / 1000, UTC) - SWEEP_OVERLAP
    else:  # newest first: the cursor moves only once the listing is complete
        assert cursor is None
    assert resumed[0].complete
    count = sandbox.notes if source == "hubspot" else sandbox.zoho_rows
    assert [await count(record_id) for record_id in ids] == [1] * 7
    assert not await redis.keys(keys.deadletter("*"))


async def test_a_worker_sweeps_by_itself_every_sweep_interval(
    redis: ArqRedis, redis_url: str, sandbox: Sandbox
) -> None:
    from workers.duties import duty_state

    missed = await sandbox.hubspot_appointment(1)
    await sandbox.hubspot_reschedule(missed, 4)

    async def logged() -> bool:
        state = await duty_state(redis, "sweep:hubspot")
        return await sandbox.notes(missed) == 1 and state.get("state") == "ok"

    await run_worker(redis_url, sandbox.http, until=logged, SWEEP_INTERVAL_S=1, SWEEP_LOOKBACK_S=60)

    assert "found" in (await duty_state(redis, "sweep:hubspot"))["summary"]
    assert await read_cursor(redis, "hubspot", "appointments") is not None


def test_a_module_without_a_listing_is_not_swept() -> None:
    from tests.dummy_crm.source import SOURCE as DUMMY
    from workers.sweep import swept_modules

    assert swept_modules(DUMMY) == []
    assert [m.name for s in sources.all_sources() for m in swept_modules(s)] == ["Appointments__s", "appointments"]


def test_only_a_window_that_starts_at_or_before_the_cursor_moves_it() -> None:
    cursor = epoch_ms(NOW - timedelta(hours=2))
    assert moves_cursor(Window(NOW - timedelta(hours=3), NOW), cursor)
    assert moves_cursor(Window(NOW - timedelta(hours=2), NOW), cursor)
    assert not moves_cursor(Window(NOW - timedelta(minutes=30), NOW), cursor)
    assert moves_cursor(Window(NOW - timedelta(minutes=30), NOW), None)


class Listing:
    """A module's listing over fixed records (oldest first, one page), or failing with `error`; counts calls."""

    def __init__(self, records: list[Modified]) -> None:
        self.records = records
        self.error: Exception | None = None
        self.calls = 0

    async def __call__(self, client: Any, since: datetime, until: datetime, size: int) -> AsyncIterator[ModifiedPage]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        yield ModifiedPage(tuple(r for r in self.records if since <= r.modified_time <= until))

    def source(self) -> Any:
        declared = sources.source_named("zoho")
        assert declared is not None
        module = dataclasses.replace(declared.modules[0], list_modified=self)
        return dataclasses.replace(declared, modules=(module,))


async def test_a_since_after_the_cursor_sweeps_its_window_and_leaves_the_cursor_alone(redis: ArqRedis) -> None:
    listing = Listing([Modified("missed", NOW - timedelta(minutes=90)), Modified("recent", NOW - timedelta(minutes=5))])
    zoho = listing.source()
    cursor = epoch_ms(NOW - timedelta(hours=2))
    await redis.set(keys.sweep_cursor("zoho", "Appointments__s"), cursor)

    later = await sweep_source(redis, zoho, None, now=NOW, lookback_s=60, since=NOW - timedelta(minutes=30))
    assert later[0].complete and later[0].found == 1
    assert await read_cursor(redis, "zoho", "Appointments__s") == cursor
    assert "(cursor left at 2026-11-30T04:00:00Z: the window starts after it): complete" in later[0].summary()

    following = await sweep_source(redis, zoho, None, now=NOW + timedelta(minutes=10), lookback_s=60)
    assert following[0].found == 2 and following[0].queued == 1  # "missed" is found; "recent" was queued
    assert await read_cursor(redis, "zoho", "Appointments__s") == epoch_ms(NOW + timedelta(minutes=10))

    earlier = await sweep_source(redis, zoho, None, now=NOW + timedelta(minutes=20), lookback_s=60, since=NOW)
    assert earlier[0].note is None  # it starts before the cursor: it moves it as usual
    assert await read_cursor(redis, "zoho", "Appointments__s") == epoch_ms(NOW + timedelta(minutes=20))


async def test_a_window_too_large_to_list_is_skipped_until_the_operator_accepts_the_gap(redis: ArqRedis) -> None:
    listing = Listing([Modified("recent", NOW - timedelta(minutes=5))])
    zoho = listing.source()
    cursor = epoch_ms(NOW - timedelta(days=2))
    await redis.set(keys.sweep_cursor("zoho", "Appointments__s"), cursor)
    reached = NOW - timedelta(hours=20, minutes=17)
    listing.error = ListingTooLargeError(NOW - timedelta(days=2), reached)

    failed = await sweep_source(redis, zoho, None, now=NOW, lookback_s=60)
    skipped = await sweep_source(redis, zoho, None, now=NOW + timedelta(minutes=1), lookback_s=60)

    assert listing.calls == 1  # the second sweep did not list again
    assert not failed[0].complete and failed[0].too_large is not None
    advice = "crmflow sweep --source zoho --since 2026-11-29T10:00:00Z (any time after 2026-11-29T09:43:00Z"
    assert advice in (failed[0].error or "") and "100,000" in (failed[0].error or "")
    assert not skipped[0].complete and skipped[0].skipped and skipped[0].error == failed[0].error
    assert await read_cursor(redis, "zoho", "Appointments__s") == cursor

    listing.error = None
    accepted = await sweep_source(
        redis, zoho, None, now=NOW + timedelta(minutes=2), lookback_s=60, since=NOW - timedelta(hours=19)
    )

    assert accepted[0].complete and accepted[0].queued == 1
    assert "gap from the cursor 2026-11-28T06:00:00Z accepted" in accepted[0].summary()
    assert await read_cursor(redis, "zoho", "Appointments__s") == epoch_ms(NOW + timedelta(minutes=2))
    assert await redis.get(keys.sweep_too_large("zoho", "Appointments__s")) is None
    resumed = await sweep_source(redis, zoho, None, now=NOW + timedelta(minutes=3), lookback_s=60)
    assert resumed[0].complete and listing.calls == 3


async def test_a_too_large_mark_goes_once_the_cursor_is_changed_by_hand(redis: ArqRedis) -> None:
    listing = Listing([])
    zoho = listing.source()
    listing.error = ListingTooLargeError(NOW - timedelta(days=1), None)
    await sweep_source(redis, zoho, None, now=NOW, lookback_s=86_400)  # no cursor: the lookback was too large
    await redis.set(keys.sweep_cursor("zoho", "Appointments__s"), epoch_ms(NOW - timedelta(hours=1)))
    listing.error = None

    result = await sweep_source(redis, zoho, None, now=NOW, lookback_s=86_400)

    assert result[0].complete and listing.calls == 2
    assert await redis.get(keys.sweep_too_large("zoho", "Appointments__s")) is None


async def test_a_refused_listing_is_reported_by_its_code_without_the_crms_words(redis: ArqRedis) -> None:
    listing = Listing([])
    listing.error = CrmRejectedError(
        "'Jane Doe <jane.doe@example.com>' is not valid", code="INVALID_QUERY", quoted=True
    )

    (result,) = await sweep_source(redis, listing.source(), None, now=NOW, lookback_s=60)

    assert result.error == "zoho: INVALID_QUERY (CrmRejectedError; the CRM's message is not logged)"
    assert "jane" not in result.summary().lower()
