"""Cleaning up after the demo: exactly the keys it created go, whatever else the database holds stays."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from sandbox.demo.cleanup import created_keys, made_of, removing_created_keys
from workers import keys
from workers.contract import ChangeEvent
from workers.queue import connect_queue, enqueue_events

NAMED = {b"arq:job:", b"zoho:Appointments__s:1:update:5", b"crmflow:queue", b"1"}


@pytest.mark.parametrize(
    ("key", "made"),
    [
        (b"crmflow:queue", True),
        (b"arq:job:zoho:Appointments__s:1:update:5", True),  # a script's prefix .. id
        (b"arq:job:1", True),
        (b"arq:job:", True),
        (b"arq:job:zoho:Appointments__s:2:update:5", False),
        (b"arq:result:zoho:Appointments__s:1:update:5", False),
        (b"crmflow:queue2", False),
        (b"", True),
    ],
)
def test_a_key_is_made_of_named_arguments_whole_or_joined(key: bytes, made: bool) -> None:
    assert made_of(key, NAMED) is made


def test_created_keys_are_new_and_made_of_what_the_demo_named() -> None:
    before = {b"unrelated", b"crmflow:queue"}
    after = {b"unrelated", b"crmflow:queue", b"arq:job:1", b"someone-else"}

    assert created_keys(before, after, NAMED | {b"someone"}) == {b"arq:job:1"}


def event(record_id: str) -> ChangeEvent:
    return ChangeEvent(
        source="zoho", module="Appointments__s", record_id=record_id, operation="update", notified_at_ms=5
    )


async def test_only_the_keys_made_through_it_go(redis: ArqRedis, redis_url: str) -> None:
    await redis.set("unrelated", "keep")
    await redis.zadd(keys.QUEUE_NAME, {"a-job-from-before": 1})
    lines: list[str] = []

    async with removing_created_keys(redis_url, lines.append) as demo_url:
        demo = connect_queue(demo_url)
        try:
            # The enqueue script builds arq:job:<id> inside Lua; no worker ever reads it here.
            result = await enqueue_events(demo, [event("1"), event("2")])
            await demo.set("demo:plain", "1")
        finally:
            await demo.aclose()
        await redis.set("someone-else", "written meanwhile, not through the demo")
        created = set(await redis.keys("*")) - {b"unrelated", keys.QUEUE_NAME.encode(), b"someone-else"}

    assert result.queued == 2
    assert {keys.ARQ_JOB_PREFIX.encode() + b"zoho:Appointments__s:1:update:5", b"demo:plain"} <= created
    assert set(await redis.keys("*")) == {b"unrelated", keys.QUEUE_NAME.encode(), b"someone-else"}
    # A key from before stays, though the demo added to it.
    assert await redis.zcard(keys.QUEUE_NAME) == 3
    assert lines == [
        f"Removed the {len(created)} keys the demo created in database {redis_url[-2:].strip('/')} (and no other)."
    ]


async def test_the_keys_go_when_the_demo_fails_too(redis: ArqRedis, redis_url: str) -> None:
    await redis.set("unrelated", "keep")

    with pytest.raises(RuntimeError, match="the demo broke"):
        async with removing_created_keys(redis_url, lambda line: None) as demo_url:
            demo = connect_queue(demo_url)
            try:
                await enqueue_events(demo, [event("1")])
            finally:
                await demo.aclose()
            raise RuntimeError("the demo broke")

    assert await redis.keys("*") == [b"unrelated"]
