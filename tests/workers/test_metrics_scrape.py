"""The scrape's read of the shared state from real Redis: one pipeline, either client, and Redis away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis as sync_redis
from arq.connections import ArqRedis

from crmflow.embedded_redis import free_port
from workers import keys
from workers.contract import ChangeEvent
from workers.deadletters import DeadLetter, DeadLetters
from workers.metrics import SharedState
from workers.metrics_scrape import (
    blocking_client,
    parse,
    read_state,
    read_state_blocking,
    state_query,
)
from workers.queue import enqueue_events

NOW = datetime.now(UTC)


def letter(letter_id: str, failed_at: datetime) -> DeadLetter:
    return DeadLetter(
        id=letter_id,
        source="zoho",
        module="Appointments__s",
        record_id="1",
        event={},
        error_class="CrmRejectedError",
        error_code="INVALID_DATA",
        message="refused",
        tries=1,
        first_failed_at=failed_at,
        last_failed_at=failed_at,
    )


async def fill(redis: ArqRedis) -> None:
    """Two jobs queued, a dead letter, a channel's expiry and failure, a completed sweep and its cursor."""
    events = [
        ChangeEvent(source="zoho", module="Appointments__s", record_id=str(n), operation="update", notified_at_ms=n)
        for n in (1, 2)
    ]
    await enqueue_events(redis, events)
    await DeadLetters(redis).add(letter("a", NOW))
    await redis.hset(keys.ZOHO_CHANNEL_EXPIRY, mapping={"1000000068001": "1796000000.0"})  # type: ignore[misc]
    await redis.hset(keys.ZOHO_CHANNEL_FAILURES, mapping={"1000000068002": "{}"})  # type: ignore[misc]
    await redis.hset(keys.duty_state("sweep:zoho"), mapping={"state": "failed", "last_ok_at": "1795990000.5"})  # type: ignore[misc]
    await redis.set(keys.sweep_cursor("zoho", "Appointments__s"), 1795989000000)


def test_the_query_names_every_registered_duty_and_swept_module() -> None:
    query = state_query()

    assert query.duties == ("zoho-channels", "sweep:hubspot", "sweep:zoho")
    assert set(query.swept) == {("zoho", "Appointments__s"), ("hubspot", "appointments")}


async def test_both_clients_read_the_same_state_in_one_pipeline(redis: ArqRedis, redis_url: str) -> None:
    await fill(redis)
    query, now_s = state_query(), time.time()

    read = await read_state(redis, query, now_s)
    blocking = blocking_client(redis_url)
    try:
        read_blocking = read_state_blocking(blocking, query, now_s)
    finally:
        blocking.close()

    assert read is not None
    assert read == read_blocking
    assert (read.queue_depth, read.deadletters, read.channel_failures) == (2, 1, 0 + 1)
    assert read.first_due_s is not None and abs(read.first_due_s - now_s) < 60
    assert read.channel_expiry_s == {"1000000068001": 1796000000.0}
    assert read.duty_completed_s == {"sweep:zoho": 1795990000.5}
    assert read.sweep_cursor_s == {("zoho", "Appointments__s"): 1795989000.0}


async def test_letters_past_their_retention_are_not_counted(redis: ArqRedis) -> None:
    # A letter's key expires with the retention; its index entry may linger until the next trim.
    await DeadLetters(redis).add(letter("old", NOW - keys.DEADLETTER_RETENTION - timedelta(hours=1)))
    await DeadLetters(redis).add(letter("new", NOW))

    read = await read_state(redis, state_query(), time.time())

    assert read is not None and read.deadletters == 1


async def test_an_empty_redis_reads_as_nothing_queued(redis: ArqRedis) -> None:
    read = await read_state(redis, state_query(), time.time())

    assert read == SharedState(queue_depth=0, first_due_s=None, deadletters=0)


def test_unreadable_values_are_left_out() -> None:
    query = state_query()
    results: list[Any] = [0, [], 0, {b"1": b"soon"}, 0, *([b"x"] * len(query.duties)), *([None] * len(query.swept))]

    assert parse(query, results) == SharedState(queue_depth=0, first_due_s=None, deadletters=0)


@pytest.fixture
def nowhere() -> str:
    """A Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


async def test_redis_away_reads_as_none_within_the_timeout(nowhere: str) -> None:
    dead = ArqRedis.from_url(nowhere)
    blocking = blocking_client(nowhere)
    started = time.monotonic()
    try:
        assert await read_state(dead, state_query(), time.time()) is None
        assert read_state_blocking(blocking, state_query(), time.time()) is None
    finally:
        await dead.aclose()
        blocking.close()
    assert time.monotonic() - started < 5


def test_a_blocking_client_gives_up_within_a_second() -> None:
    client = blocking_client("redis://127.0.0.1:6379/0")
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 1.0
        assert isinstance(client, sync_redis.Redis)
    finally:
        client.close()
