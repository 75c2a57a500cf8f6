"""The event log's store: entries written in one script, read newest first with filters and a cursor, bounded."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis

from workers import keys
from workers.eventlog import (
    EPOCH,
    BadEventId,
    EntryAction,
    EntryField,
    EntryTimings,
    EventEntry,
    EventFilter,
    EventLog,
    EventLogBounds,
    get_event,
    list_events,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def entry(record_id: str = "101", *, source: str = "zoho", outcome: str = "processed", job: str = "") -> EventEntry:
    return EventEntry.model_validate(
        {
            "job_id": job or f"{source}:Appointments__s:{record_id}:update:1",
            "source": source,
            "module": "Appointments__s",
            "record_id": record_id,
            "operation": "update",
            "origin": "notification",
            "notified_at": T0,
            "outcome": outcome,
            "status": "processed",
            "changes": [EntryField(name="Appointment_Start_Time", old="a", new="b")],
            "rules": ["log-reschedules"],
            "actions": [EntryAction(rule="log-reschedules", action="log_reschedule_history", status="created")],
            "timings": EntryTimings(started_at=T0, finished_at=T0 + timedelta(seconds=1)),
        }
    )


async def test_an_entry_written_is_read_back_whole_by_its_id(redis: ArqRedis) -> None:
    written = entry()
    event_id = await EventLog(redis).write(written)

    read = await get_event(redis, event_id)

    assert read == written.model_copy(update={"id": event_id})
    assert abs(read.written_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert await get_event(redis, "1-0") is None
    with pytest.raises(BadEventId):
        await get_event(redis, "../etc")


async def test_pages_come_newest_first_and_the_cursor_goes_on_where_the_last_page_ended(redis: ArqRedis) -> None:
    log = EventLog(redis)
    ids = [await log.write(entry(str(n))) for n in range(5)]

    first = await list_events(redis, limit=2)
    second = await list_events(redis, limit=2, before=first.next_before)
    last = await list_events(redis, limit=2, before=second.next_before)

    assert [e.id for e in first.entries + second.entries + last.entries] == ids[::-1]
    assert [e.record_id for e in first.entries] == ["4", "3"]
    assert last.next_before is None


async def test_filters_select_by_source_outcome_and_record(redis: ArqRedis) -> None:
    log = EventLog(redis)
    await log.write(entry("1", source="zoho"))
    await log.write(entry("2", source="hubspot", outcome="dead_lettered"))
    await log.write(entry("1", source="zoho", outcome="nothing_to_do"))
    await log.write(entry("3", source="hubspot"))

    hubspot = await list_events(redis, EventFilter(source="hubspot"))
    dead = await list_events(redis, EventFilter(outcome="dead_lettered"))
    record = await list_events(redis, EventFilter(record_id="1"))
    record_processed = await list_events(redis, EventFilter(record_id="1", outcome="processed"))

    assert [e.record_id for e in hubspot.entries] == ["3", "2"]
    assert [e.record_id for e in dead.entries] == ["2"]
    assert [e.outcome for e in record.entries] == ["nothing_to_do", "processed"]
    assert [e.outcome for e in record_processed.entries] == ["processed"]


async def test_a_record_filter_pages_with_the_cursor_too(redis: ArqRedis) -> None:
    log = EventLog(redis)
    ids = []
    for _ in range(3):
        ids.append(await log.write(entry("7")))
        await log.write(entry("8"))

    first = await list_events(redis, EventFilter(record_id="7"), limit=2)
    rest = await list_events(redis, EventFilter(record_id="7"), limit=2, before=first.next_before)

    assert [e.id for e in first.entries + rest.entries] == ids[::-1]
    assert rest.next_before is None


async def test_the_time_range_selects_by_when_entries_were_written(redis: ArqRedis) -> None:
    # Entries at known times: written straight into the stream with explicit ids, as the script writes them.
    body = entry().model_dump_json(exclude={"id"})
    for ms in (1_000, 2_000, 3_000):
        await redis.xadd(keys.EVENT_LOG, {"e": body}, id=f"{ms}-0")
        await redis.zadd(keys.event_log_record("101"), {f"{ms}-0": ms})
    since, until = datetime.fromtimestamp(1.5, UTC), datetime.fromtimestamp(3, UTC)

    page = await list_events(redis, EventFilter(since=since, until=until))
    for_record = await list_events(redis, EventFilter(record_id="101", since=since, until=until))

    assert [e.id for e in page.entries] == ["2000-0"]
    assert [e.id for e in for_record.entries] == ["2000-0"]


async def test_a_time_range_before_1970_reads_from_the_first_entry_instead_of_failing(redis: ArqRedis) -> None:
    body = entry().model_dump_json(exclude={"id"})
    for ms in (1_000, 2_000):
        await redis.xadd(keys.EVENT_LOG, {"e": body}, id=f"{ms}-0")
        await redis.zadd(keys.event_log_record("101"), {f"{ms}-0": ms})
    sixties = datetime(1960, 1, 1, tzinfo=UTC)

    assert [e.id for e in (await list_events(redis, EventFilter(since=sixties))).entries] == ["2000-0", "1000-0"]
    assert (await list_events(redis, EventFilter(until=sixties))).entries == []
    assert (await list_events(redis, EventFilter(until=EPOCH))).entries == []
    assert (await list_events(redis, before="0-0")).entries == []
    assert len((await list_events(redis, EventFilter(record_id="101", since=sixties))).entries) == 2
    assert (await list_events(redis, EventFilter(record_id="101", until=sixties))).entries == []


async def test_the_count_bound_keeps_the_newest_entries_and_reads_skip_what_it_trimmed(redis: ArqRedis) -> None:
    log = EventLog(redis, EventLogBounds(max_entries=3))
    ids = [await log.write(entry("5")) for _ in range(5)]

    page = await list_events(redis, EventFilter(record_id="5"))

    assert await redis.xlen(keys.EVENT_LOG) == 3
    assert [e.id for e in page.entries] == ids[:1:-1]
    assert await redis.zcard(keys.event_log_record("5")) == 3


async def test_the_age_bound_drops_older_entries_and_both_keys_expire(redis: ArqRedis) -> None:
    body = entry("9").model_dump_json(exclude={"id"})
    await redis.xadd(keys.EVENT_LOG, {"e": body}, id="1000-0")  # written long ago
    await redis.zadd(keys.event_log_record("9"), {"1000-0": 1000})
    log = EventLog(redis, EventLogBounds(max_age_s=3600))

    fresh = await log.write(entry("9"))

    assert [e.id for e in (await list_events(redis)).entries] == [fresh]
    assert await redis.zrange(keys.event_log_record("9"), 0, -1) == [fresh.encode()]
    for key in (keys.EVENT_LOG, keys.event_log_record("9")):
        assert 3_590_000 < await redis.pttl(key) <= 3_600_000


async def test_a_filtered_scan_stops_after_its_budget_with_a_cursor_to_go_on(redis: ArqRedis) -> None:
    body = entry("1").model_dump_json(exclude={"id"})
    minute_ago = int(time.time() * 1000) - 60_000
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(5_201):
            pipe.xadd(keys.EVENT_LOG, {"e": body}, id=f"{minute_ago}-{n}")
        await pipe.execute()
    await EventLog(redis).write(entry("1", outcome="dead_lettered"))  # trims nothing: the bounds are far

    first = await list_events(redis, EventFilter(source="zoho", outcome="dead_lettered"))
    # The dead letter at the very end is found first; the scan then stops within its budget with a cursor.
    assert [e.outcome for e in first.entries] == ["dead_lettered"]
    assert first.next_before is not None
    rest = await list_events(redis, EventFilter(outcome="dead_lettered"), before=first.next_before)
    assert rest.entries == []


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        EventLogBounds(max_age_s=0)
    with pytest.raises(ValueError, match="positive"):
        EventLogBounds(max_entries=0)


async def test_a_page_as_json_and_the_script_loaded_at_start_up(redis: ArqRedis) -> None:
    log = EventLog(redis)
    await log.prepare()
    older = await log.write(entry())
    event_id = await log.write(entry())

    page = (await list_events(redis, limit=1)).as_json()
    last = (await list_events(redis, limit=1, before=older)).as_json()

    assert page["next_before"] == event_id
    assert (last["events"], last["next_before"]) == ([], None)
    assert (await list_events(redis, limit=2)).next_before is None  # the page ends with the log's oldest entry
    assert [(item["id"], item["job"], item["replay_of"]) for item in page["events"]] == [
        (event_id, "process_change", None)
    ]


class Counting(Redis):
    """A Redis client that notes every command it sends (each is a round trip outside a pipeline)."""

    sent: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]))
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # unannotated in redis-py


async def test_a_write_is_one_round_trip_once_the_script_is_loaded(redis: ArqRedis, redis_url: str) -> None:
    counting = Counting.from_url(redis_url)
    counting.sent = []
    try:
        log = EventLog(counting, EventLogBounds(max_entries=2))
        await log.prepare()
        counting.sent.clear()
        for _ in range(3):
            await log.write(entry())
        assert counting.sent == ["EVALSHA"] * 3
    finally:
        await counting.aclose()
