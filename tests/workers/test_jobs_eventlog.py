"""Event log entries written by real jobs: a real arq worker (tests/workers/harness.py), real Redis, the sandbox.

One entry per change at its final outcome (processed, dead-lettered, nothing to do), retries inside it, the
CRM's ids of what actions wrote, no personal values, and a replayed dead letter's own entry linked to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change
from tests.workers.test_jobs import HISTORY_PATH, NEVER_RESCHEDULED, Zoho, notify, soon, work, zoho_error
from tests.workers.test_replay_action import only_letter, replay, zoho_refused_once
from workers.eventlog import EntryField, EventEntry, EventFilter, get_event, list_events

RULE = "zoho-log-reschedules"
ACTION = "log_reschedule_history"


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


async def entries(redis: ArqRedis, record_id: str = NEVER_RESCHEDULED) -> list[EventEntry]:
    return (await list_events(redis, EventFilter(record_id=record_id))).entries


async def test_a_reschedule_leaves_one_entry_with_its_change_rule_and_the_history_row_id(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    before = await zoho.appointment(NEVER_RESCHEDULED)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(5), Reschedule_Reason="By Customer", Reschedule_Note="Away")
    event = await notify(redis, NEVER_RESCHEDULED)
    started = datetime.now(UTC)
    await work(redis_url, zoho)

    newest, first = await entries(redis)

    assert (first.operation, first.outcome, first.status, first.first_seen) == (
        "insert",
        "nothing_to_do",
        "processed",
        True,
    )
    assert (newest.job_id, newest.job, newest.source, newest.module) == (
        event.job_id(),
        "process_change",
        "zoho",
        "Appointments__s",
    )
    assert (newest.operation, newest.origin, newest.outcome, newest.status, newest.tries) == (
        "update",
        "notification",
        "processed",
        "processed",
        1,
    )
    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert newest.rules == (RULE,)
    assert [(a.rule, a.action, a.status, a.crm_ids) for a in newest.actions] == [
        (RULE, ACTION, "created", (row["id"],))
    ]
    after = await zoho.appointment(NEVER_RESCHEDULED)
    start = EntryField(
        name="Appointment_Start_Time", old=before["Appointment_Start_Time"], new=after["Appointment_Start_Time"]
    )
    assert start in newest.changes
    timings = newest.timings
    assert timings.received_at is not None
    assert started - timedelta(seconds=5) < timings.received_at <= timings.started_at <= timings.finished_at
    assert timings.crm_calls >= 2 and timings.crm_s > 0  # the fetch and the history row at least
    assert await get_event(redis, newest.id) == newest
    # What the user wrote in the CRM is personal: neither the entry nor the log holds it.
    assert "By Customer" not in newest.model_dump_json() and "Away" not in newest.model_dump_json()


async def test_a_job_retried_then_processed_leaves_one_entry_counting_its_tries(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "times": 2, "status": 503})

    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    newest, _first = await entries(redis)
    assert (newest.outcome, newest.tries) == ("processed", 3)
    assert [a.status for a in newest.actions] == ["created"]


async def test_a_dead_lettered_change_names_its_letter_and_its_replay_links_back_to_it(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    failed = await zoho_refused_once(redis, redis_url, zoho)
    refused = (await entries(redis))[0]
    assert (refused.outcome, refused.dead_letters) == ("dead_lettered", (failed.id,))
    assert [(a.status, a.error, a.crm_ids) for a in refused.actions] == [("dead_lettered", "INVALID_DATA", ())]

    replayed = await replay(redis, failed)
    await work(redis_url, zoho)

    again = (await entries(redis))[0]
    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert (again.job, again.job_id, again.replay_of, again.outcome) == (
        "replay_action",
        replayed.job_id,
        failed.id,
        "processed",
    )
    assert [(a.status, a.crm_ids) for a in again.actions] == [("created", (row["id"],))]
    assert "Appointment_Start_Time" in {change.name for change in again.changes}
    assert len(await entries(redis)) == 3  # the insert, the refusal, the replay


async def test_a_replayed_job_letter_leaves_a_process_change_entry_linked_to_it(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.faults({"method": "GET", "path_prefix": "/crm/v7/Appointments__s/", "status": 500})
    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)
    failed = await only_letter(redis, "zoho")
    gave_up = (await entries(redis))[0]
    assert (gave_up.outcome, gave_up.tries, gave_up.dead_letters) == ("dead_lettered", 4, (failed.id,))
    await zoho.faults()

    await replay(redis, failed)
    await work(redis_url, zoho)

    again = (await entries(redis))[0]
    assert (again.job, again.replay_of, again.outcome) == ("process_change", failed.id, "nothing_to_do")


async def test_a_refusal_of_the_history_endpoint_is_not_retried_and_says_so(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(7))
    await zoho.faults(zoho_error(403, "NOT_ALLOWED", "not allowed"))

    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)

    newest = (await entries(redis))[0]
    assert (newest.outcome, newest.tries, newest.actions[0].error) == ("dead_lettered", 1, "NOT_ALLOWED")
    assert (await list_events(redis, EventFilter(outcome="dead_lettered"))).entries == [newest]


async def test_a_change_a_sweep_found_leaves_an_entry_saying_so(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    await enqueue_change(redis, "zoho", "Appointments__s", NEVER_RESCHEDULED, origin="sweep", since_ms=0)
    await work(redis_url, zoho)

    (swept,) = await entries(redis)
    assert (swept.origin, swept.outcome, swept.first_seen) == ("sweep", "nothing_to_do", True)
