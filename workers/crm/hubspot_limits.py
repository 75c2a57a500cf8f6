"""HubSpot rate limits shared by every worker: when HubSpot says a window is used up, all wait it out."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from workers import keys
from workers.crm.hubspot_models import DAILY_WAIT_S
from workers.errors import CrmRateLimitedError

PAUSE_KEY = keys.HUBSPOT_PAUSE


def pause_after_s(headers: httpx.Headers) -> float | None:
    """Seconds to hold off after an answer that says a window is used up (daily or ten-secondly). Pure."""
    if headers.get("x-hubspot-ratelimit-daily-remaining") == "0":
        return DAILY_WAIT_S
    if headers.get("x-hubspot-ratelimit-remaining") != "0":
        return None
    try:
        return float(headers.get("x-hubspot-ratelimit-interval-milliseconds", "10000")) / 1000
    except ValueError:
        return 10.0


class HubSpotThrottle:
    """Reads HubSpot's X-HubSpot-RateLimit-* headers and keeps a shared pause in Redis."""

    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._clock = clock

    async def check(self) -> None:
        """Raise CrmRateLimitedError while a pause is in force, instead of spending a request on a 429."""
        raw = await self._redis.get(PAUSE_KEY)
        if raw is not None:
            wait_s = float(raw) - self._clock()
            if wait_s > 0:
                raise CrmRateLimitedError("HubSpot's rate-limit window is used up", code="PAUSED", retry_after_s=wait_s)

    async def observe(self, response: httpx.Response, retry_after_s: float | None = None) -> None:
        """Start a pause when the answer says nothing remains in the window (or when it was a 429)."""
        wait_s = retry_after_s if retry_after_s is not None else pause_after_s(response.headers)
        if not wait_s:
            return
        until = self._clock() + wait_s
        current = await self._redis.get(PAUSE_KEY)
        # Only ever lengthen a pause: a ten-secondly wait must not cut a daily one short.
        if current is None or float(current) < until:
            await self._redis.set(PAUSE_KEY, str(until), px=max(int(wait_s * 1000), 1))
