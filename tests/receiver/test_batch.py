"""EnqueueBatch against real Redis: requests arriving together share one script call, each gets its own counts,
a failed call answers each of its requests 503 and loses nothing, HubSpot redeliveries are dropped in the script."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError

from crmflow.embedded_redis import EmbeddedRedis
from receiver.app import create_app
from receiver.batch import EnqueueBatch
from tests.conftest import sample
from tests.receiver.test_hubspot_routes import config as hubspot_config
from tests.receiver.test_hubspot_routes import deliver
from tests.receiver.test_routes import config, post
from workers import keys
from workers.contract import QUEUE_NAME, ChangeEvent, dumps, loads
from workers.errors import QueueUnavailableError
from workers.queue import COALESCED, DUPLICATE, QUEUED, Job, connect_queue, event_job

HEADER = 11  # the enqueue script's fixed arguments before the last-notification keys (workers/queue.py)


class Counting(ArqRedis):
    """An arq client that notes the arguments of each enqueue script call, and can fail chosen calls as a
    dropped connection would (before the command reaches Redis)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scripts: list[tuple[Any, ...]] = []
        self.fail_calls: set[int] = set()  # 1-based numbers of script calls to fail

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] in ("EVALSHA", "EVAL"):
            self.scripts.append(args[4:])  # EVALSHA, the sha, the number of keys, the queue: then ARGV
            if len(self.scripts) in self.fail_calls:
                raise RedisConnectionError("the connection dropped (test)")
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def jobs_per_call(self) -> list[int]:
        """How many jobs each script call carried, read from its ARGV."""
        counts = []
        for argv in self.scripts:
            position, jobs = HEADER + int(argv[7]), 0
            while position < len(argv):
                position += 7 + int(argv[position + 6])
                jobs += 1
            counts.append(jobs)
        return counts


@pytest.fixture
async def counting(redis_url: str, redis: ArqRedis) -> AsyncIterator[Counting]:
    pool = ConnectionPool.from_url(redis_url)
    client = Counting(connection_pool=pool, job_serializer=dumps, job_deserializer=loads, default_queue_name=QUEUE_NAME)
    client.auto_close_connection_pool = True
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def private_redis() -> Iterator[str]:
    """A redis-server of this test's own, whose settings it may change (maxmemory)."""
    with EmbeddedRedis() as server:
        yield server.url


def change(record: str, at_ms: int = 1000, operation: str = "update") -> ChangeEvent:
    return ChangeEvent(
        source="zoho",
        module="Appointments__s",
        record_id=record,
        operation=operation,
        changed_fields=("Appointment_Start_Time",),
        notified_at_ms=at_ms,
        channel_id="1000000068001",
    )


def jobs(*records: str, at_ms: int = 1000) -> list[Job]:
    return [event_job(change(record, at_ms), 0) for record in records]


async def queued_ids(redis: ArqRedis) -> set[str]:
    return {str(job.job_id) for job in await redis.queued_jobs(queue_name=QUEUE_NAME)}


async def test_requests_arriving_in_the_same_turn_share_one_call_each_with_its_own_outcomes(
    counting: Counting, redis: ArqRedis
) -> None:
    batch = EnqueueBatch(counting)
    await batch.enqueue(jobs("queued-before"))
    counting.scripts.clear()

    answers = await asyncio.gather(
        batch.enqueue(jobs("1", "2"), notified_by="zoho"),
        batch.enqueue(jobs("queued-before", "3"), notified_by="zoho"),
        batch.enqueue(jobs("2"), notified_by="hubspot"),  # the first request's record 2, same id: a duplicate
        batch.enqueue(jobs("3", at_ms=2000)),  # record 3's job is queued, not started: folded into it
        batch.enqueue([], notified_by="hubspot"),
    )

    assert len(counting.scripts) == 1
    assert list(answers) == [[QUEUED, QUEUED], [DUPLICATE, QUEUED], [DUPLICATE], [COALESCED], []]
    assert len(await queued_ids(redis)) == 4
    # One last-notification key per source, in the same call.
    assert int(counting.scripts[0][7]) == 2
    assert await redis.exists(keys.last_notification("zoho"), keys.last_notification("hubspot")) == 2


async def test_requests_arriving_while_a_call_is_in_flight_go_together_in_the_next(
    counting: Counting, redis: ArqRedis
) -> None:
    batch = EnqueueBatch(counting)
    first = asyncio.create_task(batch.enqueue(jobs("a")))
    await asyncio.sleep(0)  # the first call is under way
    later = [asyncio.create_task(batch.enqueue(jobs(str(n)))) for n in range(10)]

    await asyncio.gather(first, *later)

    assert counting.jobs_per_call() == [1, 10]


async def test_no_call_carries_more_than_the_chunk_and_a_small_request_waits_for_one_chunk_at_most(
    counting: Counting, redis: ArqRedis
) -> None:
    batch = EnqueueBatch(counting, chunk=3)
    big = asyncio.create_task(batch.enqueue(jobs(*(f"big-{n}" for n in range(8)))))
    small = asyncio.create_task(batch.enqueue(jobs("small-1")))
    await asyncio.sleep(0)
    late = asyncio.create_task(batch.enqueue(jobs("late-1", "late-2")))  # arrives during the first call

    big_flags, small_flags, late_flags = await asyncio.gather(big, small, late)

    assert counting.jobs_per_call() == [3, 3, 3, 2]
    assert big_flags == [QUEUED] * 8 and small_flags == [QUEUED] and late_flags == [QUEUED, QUEUED]
    # The late request went in the second call, ahead of the big one's remaining chunks.
    assert "late-1" in str(counting.scripts[1])
    assert len(await queued_ids(redis)) == 11


async def test_a_failed_call_fails_each_of_its_requests_and_a_retry_loses_nothing(
    counting: Counting, redis: ArqRedis
) -> None:
    batch = EnqueueBatch(counting, chunk=3)
    counting.fail_calls = {2}
    big = [f"big-{n}" for n in range(5)]  # chunks in calls 1 and 2

    answers = await asyncio.gather(
        batch.enqueue(jobs(*big), notified_by="zoho"),
        batch.enqueue(jobs("small")),  # in call 2 with the big one's second chunk
        return_exceptions=True,
    )
    after = await batch.enqueue(jobs("next"))  # call 3: Redis answers again

    assert all(isinstance(answer, QueueUnavailableError) for answer in answers), answers
    assert after == [QUEUED]
    assert await queued_ids(redis) == {f"zoho:Appointments__s:{r}:update:1000" for r in [*big[:3], "next"]}

    retried = await asyncio.gather(batch.enqueue(jobs(*big), notified_by="zoho"), batch.enqueue(jobs("small")))

    assert list(retried) == [[DUPLICATE] * 3 + [QUEUED] * 2, [QUEUED]]
    assert len(await queued_ids(redis)) == 7


async def test_redis_refusing_writes_answers_every_request_of_the_call_503_and_a_retry_queues_all(
    private_redis: str,
) -> None:
    queue = connect_queue(private_redis)
    app = create_app(config(), redis=queue)
    bodies = [sample("zoho/appointment_update") | {"ids": [str(n), str(n + 100)]} for n in range(6)]
    try:
        await queue.config_set("maxmemory", 1)  # every write refused: OOM, as a full Redis with noeviction
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
            refused = await asyncio.gather(*(post(http, body) for body in bodies))
            await queue.config_set("maxmemory", 0)
            retried = await asyncio.gather(*(post(http, body) for body in bodies))
        queued = await queue.zcard(QUEUE_NAME)
    finally:
        await queue.aclose()

    assert [answer.status_code for answer in refused] == [503] * 6
    assert {answer.json()["error"] for answer in refused} == {"queue_unavailable"}
    assert [answer.json() for answer in retried] == [
        {"status": "accepted", "queued": 2, "duplicates": 0, "ignored": 0}
    ] * 6
    assert queued == 12


async def test_concurrent_callbacks_through_the_app_are_answered_each_with_its_own_counts(
    counting: Counting, redis: ArqRedis
) -> None:
    app = create_app(config(), redis=counting)
    callback = sample("zoho/appointment_update")
    bodies = [callback | {"ids": [str(n)]} for n in range(20)] + [callback | {"ids": ["0", "1", "99"]}]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
        await post(http, callback | {"ids": ["0"]})  # record 0 is queued before
        counting.scripts.clear()
        answers = await asyncio.gather(*(post(http, body) for body in bodies))

    assert len(counting.scripts) < len(bodies)  # requests shared calls
    assert answers[0].json() == {"status": "accepted", "queued": 0, "duplicates": 1, "ignored": 0}
    assert all(answer.json()["queued"] == 1 for answer in answers[1:20])
    # Records 0 and 1 were queued under the same ids (same server_time) by the requests before it.
    assert answers[20].json() == {"status": "accepted", "queued": 1, "duplicates": 2, "ignored": 0}
    assert len(await queued_ids(redis)) == 21


def hubspot_batch(occurred_at: int = 1795000000100) -> list[dict[str, Any]]:
    start, end, _ = sample("hubspot/appointment_reschedule")
    return [start | {"occurredAt": occurred_at}, end | {"occurredAt": occurred_at}]


@pytest.fixture
async def hubspot(counting: Counting) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(hubspot_config(), redis=counting)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:8000") as http:
        yield http


async def test_a_hubspot_batch_redelivered_at_the_same_time_is_queued_once_in_one_call(
    hubspot: httpx.AsyncClient, counting: Counting, redis: ArqRedis
) -> None:
    answers = await asyncio.gather(*(deliver(hubspot, hubspot_batch()) for _ in range(3)))

    bodies = sorted((answer.json()["queued"], answer.json()["duplicates"]) for answer in answers)
    assert bodies == [(0, 2), (0, 2), (1, 0)]
    assert len(await queued_ids(redis)) == 1
    seen = [keys.seen("hubspot", key) for key in (await seen_keys(redis))]
    assert len(seen) == 2
    for key in seen:
        assert 0 < await redis.ttl(key) <= keys.SEEN_TTL_S
    assert len(counting.scripts) <= 2  # one, unless a request reached the batch a turn later


async def seen_keys(redis: ArqRedis) -> list[str]:
    prefix = keys.seen("hubspot", "")
    return [key.decode().removeprefix(prefix) async for key in redis.scan_iter(match=f"{prefix}*")]


async def test_a_batch_with_some_events_seen_becomes_the_job_of_its_new_events_alone(
    hubspot: httpx.AsyncClient, redis: ArqRedis
) -> None:
    start, end = hubspot_batch(1795000000500)
    await deliver(hubspot, [start])
    earlier_end = end | {"occurredAt": 1795000000300}

    answer = await deliver(hubspot, [start, earlier_end])

    assert answer.json() == {"status": "accepted", "queued": 1, "duplicates": 1, "ignored": 0}
    # The new event alone was folded into the record's queued job: its field, its time (had the seen event
    # been part of it, the job's id would have been the queued job's own, a duplicate).
    marker: dict[bytes, bytes] = await redis.hgetall(  # type: ignore[misc]
        keys.queued_marker("hubspot", "appointments", "30118")
    )
    assert marker[b"coalesced"] == b"1" and b"field:hs_appointment_end" in marker
    assert marker[b"at"] == b"1795000000500"
    assert len(await queued_ids(redis)) == 1
    assert len(await seen_keys(redis)) == 2


async def test_a_hubspot_batch_refused_by_redis_is_not_taken_for_a_redelivery(
    hubspot: httpx.AsyncClient, counting: Counting, redis: ArqRedis
) -> None:
    counting.fail_calls = {1}

    refused = await deliver(hubspot, hubspot_batch())
    retried = await deliver(hubspot, hubspot_batch())

    assert refused.status_code == 503
    assert retried.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 0}
    assert len(await queued_ids(redis)) == 1
