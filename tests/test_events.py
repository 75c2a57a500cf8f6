"""`crmflow events` as an operator runs it (a real process, real Redis): the table, JSON lines, filters, one entry."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arq.connections import ArqRedis

from crmflow.events import event_filter, format_entry, format_table
from tests.test_cli import crmflow
from tests.workers.test_eventlog import entry
from workers.eventlog import EPOCH, EntryAction, EntryField, EventLog, EventPage, list_events

Events = Callable[..., Awaitable[subprocess.CompletedProcess[str]]]


@pytest.fixture
def events(redis_url: str, tmp_path: Path) -> Events:
    """`python -m crmflow events ARGS` against the test database, run off the event loop."""

    async def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(crmflow, "events", *args, cwd=tmp_path, **({"REDIS_URL": redis_url} | env))

    return run


async def three(redis: ArqRedis) -> list[str]:
    log = EventLog(redis)
    return [
        await log.write(entry("101")),
        await log.write(entry("202", source="hubspot", outcome="dead_lettered")),
        await log.write(entry("101", outcome="nothing_to_do")),
    ]


@pytest.mark.slow
async def test_the_table_lists_entries_newest_first_and_filters_by_record(redis: ArqRedis, events: Events) -> None:
    ids = await three(redis)

    everything = await events()
    record = await events("--record", "101")
    dead = await events("--outcome", "dead_lettered", "--source", "hubspot")
    recent = await events("--newer-than", "1h", "--json")
    bad = await events("--newer-than", "soon")
    # Back before 1970: everything (Redis refuses a negative stream id); beyond what a date can hold: a usage error.
    ancient = await events("--newer-than", "3000000w")
    endless = await events("--newer-than", "99999999999999w")

    assert everything.returncode == 0, everything.stderr
    header, *rows, footer = everything.stdout.splitlines()
    assert header.split()[:3] == ["id", "finished", "(UTC)"]
    assert [row.split()[0] for row in rows] == ids[::-1]
    assert footer == "3 entries"
    assert "log-reschedules/log_reschedule_history created" in rows[0]
    assert [row.split()[0] for row in record.stdout.splitlines()[1:-1]] == [ids[2], ids[0]]
    assert [row.split()[0] for row in dead.stdout.splitlines()[1:-1]] == [ids[1]]
    assert len(recent.stdout.splitlines()) == 3
    assert bad.returncode == 2 and "is not a duration like 30m" in bad.stderr
    assert ancient.returncode == 0, ancient.stderr
    assert ancient.stdout.splitlines()[-1] == "3 entries"
    assert endless.returncode == 2 and "is too long a duration" in endless.stderr


def test_control_characters_in_an_entry_are_escaped_in_the_table_and_in_full() -> None:
    hostile = entry("7\x1b[2J\r").model_copy(
        update={
            "id": "1-0",
            "module": "Appoint\nments",
            "actions": (EntryAction(rule="r", action="a", status="dead_lettered", error="BAD\x07CODE"),),
        }
    )

    text = format_entry(hostile)
    table = format_table(EventPage([hostile]))

    for shown in (text, table):
        assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
        assert "\\x1b[2J" in shown and "BAD\\x07CODE" in shown
    assert "record        7\\x1b[2J\\r" in text.splitlines()
    assert len(table.splitlines()) == 3  # the module's newline did not split its row


def test_an_age_back_before_1970_filters_from_1970() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)

    assert event_filter(now, newer_than=timedelta(weeks=3_000_000)).since == EPOCH
    assert event_filter(now, newer_than=timedelta(days=999_999_999)).since == EPOCH


@pytest.mark.slow
async def test_json_prints_one_object_per_line_and_a_page_ends_with_its_cursor(redis: ArqRedis, events: Events) -> None:
    ids = await three(redis)

    lines = await events("--json", "--record", "101")
    first = await events("--limit", "2")
    rest = await events("--json", "--before", ids[1])

    assert lines.returncode == 0, lines.stderr
    parsed = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [(item["id"], item["record_id"], item["outcome"]) for item in parsed] == [
        (ids[2], "101", "nothing_to_do"),
        (ids[0], "101", "processed"),
    ]
    assert first.stdout.splitlines()[-1] == f"2 entries; older ones: add --before {ids[1]}"
    assert [json.loads(line)["id"] for line in rest.stdout.splitlines()] == [ids[0]]


@pytest.mark.slow
async def test_show_prints_one_entry_in_full_and_fails_clearly_for_a_missing_or_malformed_id(
    redis: ArqRedis, events: Events
) -> None:
    ids = await three(redis)

    shown = await events("show", ids[0])
    as_json = await events("show", ids[0], "--json")
    missing = await events("show", "1-0")
    malformed = await events("show", "nope")
    empty = await events("--record", "nobody")

    assert shown.returncode == 0, shown.stderr
    assert f"id            {ids[0]}" in shown.stdout.splitlines()
    assert 'changed       Appointment_Start_Time: "a" -> "b"' in shown.stdout.splitlines()
    assert json.loads(as_json.stdout)["id"] == ids[0]
    assert (missing.returncode, missing.stderr.splitlines()[0]) == (
        1,
        "crmflow: no event 1-0 (trimmed, or never written; see `crmflow events`)",
    )
    assert malformed.returncode == 2 and "not an event id" in malformed.stderr
    assert (empty.returncode, empty.stdout) == (0, "no entries\n")


@pytest.mark.slow
async def test_an_unreachable_redis_is_one_line_without_its_password(events: Events) -> None:
    done = await events(REDIS_URL="redis://:hunter2@127.0.0.1:1/0")

    assert done.returncode == 2
    assert "Redis at redis://:***@127.0.0.1:1/0 failed" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


async def test_the_text_of_an_entry_withholds_personal_values_and_names_crm_ids(redis: ArqRedis) -> None:
    written = entry("7").model_copy(
        update={
            "changes": (EntryField(name="Reschedule_Note", withheld=True),),
            "actions": (EntryAction(rule="r", action="create_hubspot_note", status="created", crm_ids=("11", "12")),),
            "replay_of": "0123456789abcdef",
        }
    )
    await EventLog(redis).write(written)
    page = await list_events(redis)

    text = format_entry(page.entries[0])
    table = format_table(EventPage(page.entries, "9-9"))

    assert "changed       Reschedule_Note: (values withheld: personal)" in text.splitlines()
    assert "action        r/create_hubspot_note: created, CRM ids 11, 12" in text.splitlines()
    assert "replay of     dead letter 0123456789abcdef" in text.splitlines()
    assert "replay of 0123456789abcdef" in table and "r/create_hubspot_note created 11,12" in table
    assert table.endswith("1 entry; older ones: add --before 9-9")
