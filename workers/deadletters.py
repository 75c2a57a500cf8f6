"""Dead letters: work that failed for good, kept in Redis with its reason for inspection and replay."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from redis.asyncio import Redis

INDEX_KEY = "crmflow:deadletters"  # sorted set: id -> last failure, epoch seconds


def _letter_key(letter_id: str) -> str:
    return f"crmflow:deadletter:{letter_id}"


class DeadLetter(BaseModel):
    """One failed piece of work: the event, where it failed, why, and when."""

    id: str
    source: str
    module: str
    record_id: str
    event: dict[str, Any]
    rule: str | None = None
    action: str | None = None
    error_class: str
    error_code: str
    message: str
    # What the failed work was about (e.g. the change's old and new values), kept for inspection.
    context: dict[str, Any] = {}
    tries: int
    first_failed_at: datetime
    last_failed_at: datetime


def dead_letter_id(job_id: str, rule: str | None, action: str | None) -> str:
    return hashlib.sha256(f"{job_id}|{rule}|{action}".encode()).hexdigest()[:16]


class DeadLetters:
    """Dead letters by id, indexed by last failure time; failing again updates the same entry."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def add(self, letter: DeadLetter) -> DeadLetter:
        existing = await self.get(letter.id)
        if existing is not None:
            letter = letter.model_copy(update={"first_failed_at": existing.first_failed_at})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_letter_key(letter.id), letter.model_dump_json())
            pipe.zadd(INDEX_KEY, {letter.id: letter.last_failed_at.timestamp()})
            await pipe.execute()
        return letter

    async def get(self, letter_id: str) -> DeadLetter | None:
        raw = await self._redis.get(_letter_key(letter_id))
        return None if raw is None else DeadLetter.model_validate_json(raw)

    async def all(self) -> list[DeadLetter]:
        """Every dead letter, oldest failure first."""
        ids = await self._redis.zrange(INDEX_KEY, 0, -1)
        if not ids:
            return []
        raw = await self._redis.mget([_letter_key(i.decode()) for i in ids])
        return [DeadLetter.model_validate_json(item) for item in raw if item is not None]
