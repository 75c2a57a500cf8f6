"""Cleaning up after the demo: the keys it created in a shared Redis database, found and removed at the end.

crmflow's keys have no configurable prefix (workers/keys.py), and arq names its job keys itself, so the demo
cannot keep its keys apart by name. Instead every client of the demo (receiver, worker, the stories) talks to
Redis through a recording proxy (recorder.py). A key the demo created is one that exists at the end, did
not exist at the start, and is made of what the demo's commands named (a key itself, or a key a script
joins from its arguments): whatever else is in the database, from before or written meanwhile by someone
else, stays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Set
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from sandbox.demo.recorder import RecordingProxy

_DELETE_BATCH = 500


def created_keys(before: Set[bytes], after: Set[bytes], named: Set[bytes]) -> set[bytes]:
    """The keys there now that were not there before and that are made of what the demo's commands named. Pure."""
    return {key for key in after - before if made_of(key, named)}


def made_of(key: bytes, named: Set[bytes]) -> bool:
    """Whether `key` is one of the `named` arguments, or several of them joined. Pure.

    A Lua script may build a key from its arguments: crmflow's enqueue script writes `ARGV[1] .. id`, the
    arq:job: prefix joined to the job id (workers/queue.py). Prefixes come to scripts as arguments, since
    only workers/keys.py spells a key (tests/test_layout.py).
    """
    # ends[i]: key[:i] is made of named arguments.
    ends = [True] + [False] * len(key)
    for end in range(1, len(key) + 1):
        ends[end] = any(ends[start] and key[start:end] in named for start in range(end))
    return ends[-1]


@asynccontextmanager
async def removing_created_keys(redis_url: str, out: Callable[[str], None]) -> AsyncIterator[str]:
    """A URL for the demo's clients; on the way out, however the demo ended, the keys they created are removed.

    Enter it before anything of the demo uses Redis and leave it after all of it has stopped.
    """
    redis: Redis = Redis.from_url(redis_url)
    try:
        before = await _keys(redis)
    except BaseException:
        await redis.aclose()
        raise
    proxy = RecordingProxy(redis_url)
    try:
        yield await proxy.start()
    finally:
        await proxy.close()
        try:
            doomed = sorted(created_keys(before, await _keys(redis), proxy.named))
            for start in range(0, len(doomed), _DELETE_BATCH):
                await redis.delete(*doomed[start : start + _DELETE_BATCH])
            out(f"Removed the {len(doomed)} keys the demo created in database {_database(redis_url)} (and no other).")
        except (RedisError, OSError) as exc:
            out(f"Could not remove the keys the demo created in Redis: {type(exc).__name__}: {exc}")
        finally:
            await redis.aclose()


def _database(redis_url: str) -> str:
    return urlsplit(redis_url).path.strip("/") or "0"


async def _keys(redis: Redis) -> set[bytes]:
    return {key async for key in redis.scan_iter(count=1000)}
