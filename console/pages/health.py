"""Health: receiver, workers, Redis, the queue, dead letters, Zoho channels and sweeps, from the status reader
(workers/status.py collect_status, as `crmflow status` shows it) and, when CONSOLE_RECEIVER_URL is set, the
receiver's own /readyz."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.views import Views, json_response, wants_json
from crmflow.dlq import age
from workers.status import Status, collect_status

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Probe:
    """One check of a part: whether it answered as it should, how it answered, and how fast."""

    ok: bool
    detail: str
    ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "ms": self.ms}


async def probe_redis(redis: Redis) -> Probe:
    started = time.perf_counter()
    try:
        await redis.ping()
        info = await redis.info("server")
    except (RedisError, OSError) as exc:
        return Probe(False, f"{type(exc).__name__}: {exc}")
    ms = round((time.perf_counter() - started) * 1000, 1)
    return Probe(True, f"Redis {info.get('redis_version', '?')}, answered PING", ms)


async def probe_receiver(http: httpx.AsyncClient | None, url: str | None) -> Probe | None:
    """The receiver's /readyz (None when CONSOLE_RECEIVER_URL is not set)."""
    if http is None or url is None:
        return None
    started = time.perf_counter()
    try:
        answer = await http.get(f"{url.rstrip('/')}/readyz", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Probe(False, f"{type(exc).__name__} from {url}/readyz")
    ms = round((time.perf_counter() - started) * 1000, 1)
    return Probe(answer.status_code == 200, f"/readyz answered {answer.status_code}", ms)


def ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{age(now - moment)} ago"


class HealthPage:
    def __init__(self, views: Views, redis: Redis, http: httpx.AsyncClient | None, receiver_url: str | None) -> None:
        self.views = views
        self.redis = redis
        self.http = http
        self.receiver_url = receiver_url

    def routes(self) -> list[Route]:
        return [Route("/health", self.show, methods=["GET"])]

    async def show(self, request: Request) -> Response:
        now = datetime.now(UTC)
        redis_probe = await probe_redis(self.redis)
        receiver = await probe_receiver(self.http, self.receiver_url)
        status: Status | None = None
        if redis_probe.ok:
            try:
                status = await collect_status(self.redis, now, sources=("zoho", "hubspot"))
            except (RedisError, OSError) as exc:
                redis_probe = Probe(False, f"{type(exc).__name__}: {exc}")
        code = 200 if status is not None else 503
        if wants_json(request):
            body = {
                "redis": redis_probe.to_json(),
                "receiver": None if receiver is None else receiver.to_json(),
                "status": None if status is None else status.to_json(),
            }
            return json_response(body, code)
        return self.views.render(
            request,
            "health.html",
            code,
            now=now,
            redis=redis_probe,
            receiver=receiver,
            receiver_url=self.receiver_url,
            status=status,
            ago=lambda moment: ago(moment, now),
            stale=lambda moment, hours: moment is None or now - moment > timedelta(hours=hours),
        )
