"""The recording proxy: commands split out of a client's bytes, forwarded unchanged, their arguments noted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from sandbox.demo.recorder import CommandReader, RecordingProxy


def test_commands_come_whole_however_the_bytes_are_cut() -> None:
    stream = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$4\r\nk\r\nv\r\n$0\r\n\r\nPING\r\n"
    reader = CommandReader()

    commands = [command for i in range(len(stream)) for command in reader.feed(stream[i : i + 1])]

    assert commands == [[b"GET", b"k"], [b"SET", b"k\r\nv", b""], [b"PING"]]
    assert CommandReader().feed(stream) == commands


def test_a_command_cut_short_waits_for_the_rest() -> None:
    reader = CommandReader()

    assert reader.feed(b"*2\r\n$3\r\nDEL\r\n$5\r\nab") == []
    assert reader.feed(b"cde\r\n") == [[b"DEL", b"abcde"]]


def test_an_argument_that_is_not_a_bulk_string_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a RESP bulk string"):
        CommandReader().feed(b"*1\r\n:1\r\n")


@pytest.fixture
async def proxy(redis: ArqRedis, redis_url: str) -> AsyncIterator[tuple[RecordingProxy, Redis]]:
    recording = RecordingProxy(redis_url)
    client: Redis = Redis.from_url(await recording.start())
    try:
        yield recording, client
    finally:
        await client.aclose()
        await recording.close()


async def test_the_proxy_forwards_commands_and_notes_their_arguments(
    proxy: tuple[RecordingProxy, Redis], redis: ArqRedis
) -> None:
    recording, client = proxy

    await client.set("demo:a", "x" * 200_000)
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset("demo:b", "field", "1")
        pipe.expire("demo:b", 60)
        await pipe.execute()

    assert len(await redis.get("demo:a") or b"") == 200_000
    field: Any = await redis.hget("demo:b", "field")  # type: ignore[misc]
    assert field == b"1"
    assert {b"demo:a", b"x" * 200_000, b"demo:b", b"field", b"60"} <= recording.named
    assert b"SET" not in recording.named  # command names are not arguments


async def test_the_proxy_uses_the_database_of_the_url(proxy: tuple[RecordingProxy, Redis], redis: ArqRedis) -> None:
    _, client = proxy

    await client.set("demo:here", "1")

    assert await redis.exists("demo:here") == 1


async def test_closing_ends_the_open_connections(proxy: tuple[RecordingProxy, Redis]) -> None:
    recording, client = proxy
    assert await client.ping()

    await recording.close()

    with pytest.raises(RedisConnectionError):
        await client.ping()
