"""Snapshots: the last state of each record processed, kept in Redis between notifications."""

from __future__ import annotations

from datetime import datetime

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.diff import Snapshot


def snapshot_key(source: str, module: str, record_id: str) -> str:
    return keys.snapshot(source, module, record_id)


def decode_snapshot(raw: bytes | str | None) -> Snapshot | None:
    """A snapshot as stored (None: there is none)."""
    if raw is None:
        return None
    data = orjson.loads(raw)
    return Snapshot(modified_time=datetime.fromisoformat(data["modified_time"]), fields=data["fields"])


def encode_snapshot(snapshot: Snapshot) -> bytes:
    """How a snapshot is stored."""
    return orjson.dumps({"modified_time": snapshot.modified_time.isoformat(), "fields": dict(snapshot.fields)})


async def load_snapshot(redis: Redis, source: str, module: str, record_id: str) -> Snapshot | None:
    return decode_snapshot(await redis.get(snapshot_key(source, module, record_id)))


async def save_snapshot(redis: Redis, source: str, module: str, record_id: str, snapshot: Snapshot) -> None:
    await redis.set(snapshot_key(source, module, record_id), encode_snapshot(snapshot), ex=keys.SNAPSHOT_TTL_S)


async def delete_snapshot(redis: Redis, source: str, module: str, record_id: str) -> None:
    await redis.delete(snapshot_key(source, module, record_id))
