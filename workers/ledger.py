"""Ledger: effects already applied in a CRM, so that no duplicate, retry or replay applies one twice."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from redis.asyncio import Redis

# Longer than any retry window (max tries x retry cap is well under a day) and than arq's job expiry.
LEDGER_TTL_S = 30 * 86_400


def effect_key(*parts: str) -> str:
    """A stable key for one effect, e.g. (source, module, record id, action, which change it was)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"crmflow:ledger:{digest}"


class Ledger:
    """One entry per effect: {"state": "pending", ...} before the CRM call, {"state": "done", ...} after it.

    A pending entry holds exactly what is about to be written, so a retry after a lost answer sends (and
    looks for) the very same thing instead of something recomputed from data that may have moved on.
    """

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        entry: dict[str, Any] = orjson.loads(raw)
        return entry

    async def pending(self, key: str, **data: Any) -> None:
        await self._redis.set(key, orjson.dumps({"state": "pending", **data}), ex=LEDGER_TTL_S)

    async def done(self, key: str, **data: Any) -> None:
        await self._redis.set(key, orjson.dumps({"state": "done", **data}), ex=LEDGER_TTL_S)
