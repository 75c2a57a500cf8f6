"""Snapshots: the last state of each record processed, kept in Redis between notifications."""

from __future__ import annotations

from datetime import datetime

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.diff import Snapshot


def snapshot_key(source: str, module: str, record_id: str) -> str:
    return keys.snapshot(source, module, record_id)


async def load_snapshot(redis: Redis, source: str, module: str, record_id: str) -> Snapshot | None:
    raw = await redis.get(snapshot_key(source, module, record_id))
    if raw is None:
        return None
    data = orjson.loads(raw)
    return Snapshot(modified_time=datetime.fromisoformat(data["modified_time"]), fields=data["fields"])


async def save_snapshot(redis: Redis, source: str, module: str, record_id: str, snapshot: Snapshot) -> None:
    data = {"modified_time": snapshot.modified_time.isoformat(), "fields": dict(snapshot.fields)}
    await redis.set(snapshot_key(source, module, record_id), orjson.dumps(data), ex=keys.SNAPSHOT_TTL_S)


async def delete_snapshot(redis: Redis, source: str, module: str, record_id: str) -> None:
    await redis.delete(snapshot_key(source, module, record_id))
