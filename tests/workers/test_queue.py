"""enqueue_events on real Redis: duplicates refused, and events for a record whose job is still queued coalesced."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from receiver.app import create_app
from receiver.config import ReceiverConfig
from tests.conftest import sample
from workers import keys
from workers.contract import QUEUE_NAME, ChangeEvent
from workers.crm.limits import crm_calls
from workers.errors import QueueUnavailableError
from workers.queue import claim_coalesced, enqueue_events

RECORD = "5545974000002555001"
MARKER = keys.queued_marker("zoho", "Appointments__s", RECORD)


def change(at_ms: int, *fields: str, operation: str = "update", replay: int = 0, record: str = RECORD) -> ChangeEvent:
    return ChangeEvent(
        source="zoho",
        module="Appointments__s",
        record_id=record,
        operation=operation,
        changed_fields=fields,
        notified_at_ms=at_ms,
        channel_id="1000000068001",
        replay=replay,
    )


async def queued_events(redis: ArqRedis) -> list[dict[str, Any]]:
    return [job.args[0] for job in await redis.queued_jobs(queue_name=QUEUE_NAME)]


async def test_a_burst_for_one_record_is_one_job(redis: ArqRedis) -> None:
    first = await enqueue_events(redis, [change(1000, "Status")])
    burst = await enqueue_events(redis, [change(2000, "Appointment_Start_Time"), change(1500, "Status", "Location")])

    assert (first.queued, burst.queued, burst.coalesced, burst.duplicates) == (1, 0, 2, 0)
    (event,) = await queued_events(redis)
    assert (event["notified_at_ms"], event["changed_fields"]) == (1000, ["Status"])  # arq's job untouched
    assert (await crm_calls(redis, "zoho", datetime.now(UTC).date()))["coalesced"] == 2


async def test_the_job_takes_what_was_folded_in_before_it_fetches_and_keeps_it_for_its_retries(
    redis: ArqRedis,
) -> None:
    queued = change(1000, "Status")
    await enqueue_events(redis, [queued, change(3000, "Appointment_Start_Time"), change(2000, "Location")])

    notified = await claim_coalesced(redis, queued, queued.job_id())
    again = await claim_coalesced(redis, queued, queued.job_id())  # a retry of the same job

    assert notified.notified_at_ms == 3000  # the latest, so the lagging-read check is the strictest
    assert set(notified.changed_fields) == {"Status", "Appointment_Start_Time", "Location"}
    assert again == notified
    assert await redis.exists(MARKER) == 0


async def test_a_change_after_the_job_started_gets_a_job_of_its_own(redis: ArqRedis) -> None:
    queued = change(1000, "Status")
    await enqueue_events(redis, [queued])
    assert await claim_coalesced(redis, queued, queued.job_id()) == queued  # nothing folded in: as queued

    later = await enqueue_events(redis, [change(2000, "Status")])

    assert (later.queued, later.coalesced) == (1, 0)
    assert len(await queued_events(redis)) == 2
    assert await redis.exists(keys.coalesced(queued.job_id())) == 0  # nothing kept for a job with nothing folded


async def test_a_job_arq_has_picked_up_takes_nothing_more(redis: ArqRedis) -> None:
    # arq marks a job in progress before our code runs: from then on events get their own jobs.
    queued = change(1000, "Status")
    await enqueue_events(redis, [queued])
    await redis.set(keys.ARQ_IN_PROGRESS_PREFIX + queued.job_id(), b"1")

    later = await enqueue_events(redis, [change(2000, "Status")])

    assert (later.queued, later.coalesced) == (1, 0)
    assert (await claim_coalesced(redis, queued, queued.job_id())) == queued  # the marker is the new job's now


async def test_what_was_folded_into_a_started_job_is_kept_when_a_new_job_takes_the_marker(redis: ArqRedis) -> None:
    # arq has started the job, which waits for the record's lock and has not claimed its marker yet.
    queued = change(1000, "Status")
    await enqueue_events(redis, [queued, change(3000, "Appointment_Start_Time")])
    await redis.set(keys.ARQ_IN_PROGRESS_PREFIX + queued.job_id(), b"1")

    later = await enqueue_events(redis, [change(4000, "Location")])
    notified = await claim_coalesced(redis, queued, queued.job_id())

    assert later.queued == 1
    assert (notified.notified_at_ms, set(notified.changed_fields)) == (3000, {"Status", "Appointment_Start_Time"})


async def test_sweep_events_are_never_coalesced(redis: ArqRedis) -> None:
    # A sweep's job checks its read against the listed time and the window; a notification's job would not.
    await enqueue_events(redis, [change(1000, "Status")])
    swept = change(2000).model_copy(update={"origin": "sweep", "since_ms": 500, "channel_id": None})

    outcome = await enqueue_events(redis, [swept])

    assert (outcome.queued, outcome.coalesced) == (1, 0)
    assert sorted(e.get("origin", "notification") for e in await queued_events(redis)) == ["notification", "sweep"]


async def test_deletes_and_replays_are_never_coalesced(redis: ArqRedis) -> None:
    await enqueue_events(redis, [change(1000, "Status")])

    delete = await enqueue_events(redis, [change(2000, operation="delete")])
    replay = await enqueue_events(redis, [change(3000, "Status", replay=1_764_000_000_000)])
    update = await enqueue_events(redis, [change(4000, "Status")])

    assert (delete.queued, replay.queued, update.coalesced) == (1, 1, 1)
    operations = sorted((e["operation"], e.get("replay", 0)) for e in await queued_events(redis))
    assert operations == [("delete", 0), ("update", 0), ("update", 1_764_000_000_000)]


async def test_nothing_is_folded_into_a_delete(redis: ArqRedis) -> None:
    await enqueue_events(redis, [change(1000, operation="delete")])

    update = await enqueue_events(redis, [change(2000, "Status")])

    assert (update.queued, update.coalesced) == (1, 0)


async def test_a_redelivered_event_is_still_a_duplicate(redis: ArqRedis) -> None:
    event = change(1000, "Status")
    await enqueue_events(redis, [event])

    again = await enqueue_events(redis, [event])

    assert (again.queued, again.duplicates, again.coalesced) == (0, 1, 0)


async def test_other_records_are_not_coalesced(redis: ArqRedis) -> None:
    result = await enqueue_events(redis, [change(1000, "Status"), change(1000, "Status", record="2")])

    assert (result.queued, result.coalesced) == (2, 0)


@pytest.fixture
async def receiver(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    config = ReceiverConfig.model_validate({"ZOHO_NOTIFY_TOKEN": "TOKEN_FOR_VERIFICATION_OF_1000000068001"})
    app = create_app(config, redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
        yield http


async def test_the_receiver_accepts_a_coalesced_event_as_queued(receiver: httpx.AsyncClient, redis: ArqRedis) -> None:
    callback = sample("zoho/appointment_update")
    later = callback | {"server_time": callback["server_time"] + 5000}
    headers = {"content-type": "application/json"}

    first = await receiver.post("/webhooks/zoho", content=orjson.dumps(callback), headers=headers)
    second = await receiver.post("/webhooks/zoho", content=orjson.dumps(later), headers=headers)
    again = await receiver.post("/webhooks/zoho", content=orjson.dumps(later), headers=headers)

    assert first.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 0}
    assert second.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 0}
    # The coalesced event made no job of its own, so its redelivery is folded in again, not refused.
    assert again.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 0}
    assert len(await queued_events(redis)) == 1


async def test_the_last_notification_is_recorded_by_the_enqueue_script_and_keeps_the_latest(redis: ArqRedis) -> None:
    before_ms = int(datetime.now(UTC).timestamp() * 1000)
    await enqueue_events(redis, [change(1, "Status")], notified_by="zoho")
    first = int(await redis.get(keys.last_notification("zoho")))
    assert 0 < await redis.ttl(keys.last_notification("zoho")) <= keys.LAST_NOTIFICATION_TTL_S
    await redis.set(keys.last_notification("zoho"), first + 10_000_000)  # as if another receiver wrote later

    await enqueue_events(redis, [change(2, "Status", record="other")], notified_by="zoho")

    assert first >= before_ms
    assert int(await redis.get(keys.last_notification("zoho"))) == first + 10_000_000


async def test_a_notification_with_nothing_to_queue_is_still_recorded_and_other_producers_record_none(
    redis: ArqRedis,
) -> None:
    await enqueue_events(redis, [], notified_by="hubspot")
    await enqueue_events(redis, [change(1, "Status")])

    assert await redis.exists(keys.last_notification("hubspot")) == 1
    assert await redis.exists(keys.last_notification("zoho")) == 0
    assert len(await queued_events(redis)) == 1


async def test_a_script_stopped_halfway_leaves_each_written_job_queued_and_a_retry_loses_nothing(
    redis: ArqRedis,
) -> None:
    # The second record's marker is corrupt (no `at`), so the script stops with an error at the second event,
    # after writing the first: that one is queued whole (job key and place in the queue), and once the key is
    # gone the sender's retry finds it a duplicate and queues the rest.
    other = "5545974000002555002"
    broken = keys.queued_marker("zoho", "Appointments__s", other)
    await redis.set(keys.ARQ_JOB_PREFIX + "placeholder", b"x")
    await redis.hset(broken, "job", "placeholder")  # type: ignore[misc]
    events = [change(1000, "Appointment_Start_Time"), change(1000, record=other), change(1000, record="3")]
    with pytest.raises(QueueUnavailableError):
        await enqueue_events(redis, events)
    assert [event["record_id"] for event in await queued_events(redis)] == [RECORD]

    await redis.delete(broken)
    retried = await enqueue_events(redis, events)
    assert (retried.queued, retried.duplicates) == (2, 1)
    assert sorted(event["record_id"] for event in await queued_events(redis)) == sorted([RECORD, other, "3"])
