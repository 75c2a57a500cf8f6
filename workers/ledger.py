"""Ledger: effects already applied in a CRM, so that no duplicate, retry or replay applies one twice."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

# Longer than any retry window (max tries x retry cap is well under a day) and than arq's job expiry.
LEDGER_TTL_S = 30 * 86_400


def effect_key(*parts: str) -> str:
    """A stable key for one effect, e.g. (source, module, record id, action, what the change was)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]
    return f"crmflow:ledger:{digest}"


class Ledger:
    """Records effects by key; the value says what was written (e.g. the created record's id)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def applied(self, key: str) -> str | None:
        """What was recorded for `key`, or None if the effect has not been applied."""
        value = await self._redis.get(key)
        return None if value is None else value.decode("utf-8")

    async def record(self, key: str, value: str) -> None:
        await self._redis.set(key, value, ex=LEDGER_TTL_S)
