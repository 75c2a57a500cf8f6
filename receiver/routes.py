"""Routes: POST /webhooks/zoho (receive → verify → validate → enqueue), GET /healthz, GET /readyz."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from arq.connections import ArqRedis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.config import ReceiverConfig
from receiver.enqueue import enqueue_events
from receiver.receive import parse_json, read_capped, require_json
from receiver.validate import validate_zoho, zoho_events
from receiver.verify import verify_zoho

logger = logging.getLogger("crmflow.receiver")


@dataclass(frozen=True)
class ReceiverState:
    """What the routes share: settings and the queue connection."""

    config: ReceiverConfig
    redis: ArqRedis


def _state(request: Request) -> ReceiverState:
    state: ReceiverState = request.app.state.crmflow
    return state


async def zoho_webhook(request: Request) -> Response:
    """Accept a Zoho Notification API callback: one job per record, answered only once Redis has them all."""
    state = _state(request)
    require_json(request.headers.get("content-type"))
    body = await read_capped(
        request.headers.get("content-length"), request.stream(), max_bytes=state.config.max_body_bytes
    )
    payload = parse_json(body)
    verify_zoho(
        payload,
        expected_token=state.config.zoho_notify_token.get_secret_value(),
        channel_ids=state.config.zoho_channel_ids,
    )
    notification = validate_zoho(payload)
    events = zoho_events(notification)
    result = await enqueue_events(state.redis, events)
    ignored = len(set(notification.ids)) - len(events)
    logger.info(
        "zoho %s %s: %d queued, %d duplicate, %d ignored (channel %s)",
        notification.module,
        notification.operation,
        result.queued,
        result.duplicates,
        ignored,
        notification.channel_id,
    )
    return JSONResponse(
        {"status": "accepted", "queued": result.queued, "duplicates": result.duplicates, "ignored": ignored}
    )


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: Redis answers PING within a second."""
    try:
        await asyncio.wait_for(_state(request).redis.ping(), timeout=1.0)
    except (RedisError, OSError, TimeoutError) as exc:
        return JSONResponse({"status": "unavailable", "redis": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


routes = [
    Route("/webhooks/zoho", zoho_webhook, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
]
