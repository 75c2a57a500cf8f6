"""The event pages on real Redis: the list newest first with its filters, one event in full, JSON or HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import ArqRedis

from console.pages.events import parse_time
from tests.console.conftest import BEARER, HTML, JSON
from tests.workers.test_eventlog import entry
from workers.eventlog import EntryField, EventEntry, EventLog

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


async def write(redis: ArqRedis, *entries: EventEntry) -> list[str]:
    log = EventLog(redis)
    return [await log.write(item) for item in entries]


async def listed(client: httpx.AsyncClient, **params: str) -> list[str]:
    answer = await client.get("/events", params=params, headers=BEARER | JSON)
    assert answer.status_code == 200, answer.text
    return [item["record_id"] for item in answer.json()["events"]]


async def test_the_list_is_newest_first_as_html_or_json(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    ids = await write(redis, entry("101"), entry("102"))

    page = await client.get("/events", headers=BEARER | HTML)
    data = await client.get("/events", headers=BEARER | JSON)

    assert page.headers["content-type"].startswith("text/html")
    assert page.text.index(f'href="/events/{ids[1]}"') < page.text.index(f'href="/events/{ids[0]}"')
    assert '<div title="rule log-reschedules">log_reschedule_history: created</div>' in page.text
    assert "Appointment_Start_Time" in page.text
    assert data.headers["content-type"] == "application/json"
    assert [item["id"] for item in data.json()["events"]] == [ids[1], ids[0]]
    assert data.json()["next_before"] is None
    # curl's Accept (*/*), or none: HTML, the console's default.
    for accept in ("*/*", ""):
        answer = await client.get("/events", headers=BEARER | {"Accept": accept})
        assert answer.headers["content-type"].startswith("text/html")


async def test_the_list_filters_by_source_record_outcome_and_time(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    await write(
        redis,
        entry("101"),
        entry("102", source="hubspot"),
        entry("103", outcome="dead_lettered"),
        entry("101", outcome="nothing_to_do"),
    )

    assert await listed(client, source="hubspot") == ["102"]
    assert await listed(client, record="101") == ["101", "101"]
    assert await listed(client, outcome="dead_lettered") == ["103"]
    assert await listed(client, record="101", outcome="processed") == ["101"]
    assert len(await listed(client, since="1h")) == 4
    assert await listed(client, until="2000-01-01T00:00") == []
    assert len(await listed(client, since=(datetime.now(UTC) - timedelta(minutes=5)).isoformat())) == 4


async def test_a_time_before_1970_is_a_filter_not_a_redis_outage(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    await write(redis, entry("101"), entry("102"))

    assert len(await listed(client, since="1900-01-01T00:00")) == 2
    assert len(await listed(client, since="3000000w")) == 2
    assert await listed(client, until="1900-01-01T00:00") == []


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"outcome": "exploded"}, "outcome: one of processed, dead_lettered, nothing_to_do"),
        ({"since": "yesterday"}, "since: 'yesterday' is neither a duration"),
        ({"until": "99999999999999w"}, "until: '99999999999999w' is neither a duration"),
        ({"limit": "0"}, "limit: a whole number from 1 to 500"),
        ({"before": "not-an-id"}, "before: not an event id"),
    ],
)
async def test_a_bad_filter_is_a_400_naming_it(client: httpx.AsyncClient, params: dict[str, str], problem: str) -> None:
    answer = await client.get("/events", params=params, headers=BEARER | JSON)

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(problem)


async def test_pages_go_on_with_the_cursor(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    await write(redis, *(entry(str(n)) for n in range(5)))

    first = (await client.get("/events", params={"limit": "2"}, headers=BEARER | JSON)).json()
    second = (
        await client.get("/events", params={"limit": "2", "before": first["next_before"]}, headers=BEARER | JSON)
    ).json()
    html = await client.get("/events", params={"limit": "2", "source": "zoho"}, headers=BEARER | HTML)

    assert [e["record_id"] for e in first["events"] + second["events"]] == ["4", "3", "2", "1"]
    assert f'href="/events?limit=2&amp;source=zoho&amp;before={first["next_before"]}"' in html.text


async def test_one_event_in_full_escaped(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    hostile = entry("101").model_copy(
        update={"changes": (EntryField(name="Reschedule_Note", old="<b>x</b>", new="<script>alert(1)</script>"),)}
    )
    (event_id,) = await write(redis, hostile)

    page = await client.get(f"/events/{event_id}", headers=BEARER | HTML)
    data = await client.get(f"/events/{event_id}", headers=BEARER | JSON)

    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "log_reschedule_history" in page.text
    assert data.json()["id"] == event_id
    assert data.json()["changes"][0]["new"] == "<script>alert(1)</script>"


async def test_an_unknown_or_malformed_event_id_is_a_404(client: httpx.AsyncClient) -> None:
    for event_id in ("1-0", "nonsense"):
        answer = await client.get(f"/events/{event_id}", headers=BEARER | HTML)
        assert answer.status_code == 404
        assert "no such event" in answer.text


def test_a_filter_time_is_a_duration_back_or_a_utc_time() -> None:
    assert parse_time("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_time("2026-11-29T08:30", NOW) == datetime(2026, 11, 29, 8, 30, tzinfo=UTC)
    assert parse_time("2026-11-29T08:30:00+01:00", NOW) == datetime(2026, 11, 29, 7, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_time("soon", NOW)
