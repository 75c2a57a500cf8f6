"""Routes: POST /webhooks/zoho and /webhooks/hubspot (receive → verify → validate → enqueue), health, metrics,
OpenAPI."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import quote

import orjson
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from receiver.batch import EnqueueBatch
from receiver.config import ReceiverConfig
from receiver.dedupe import Delivery, hubspot_deliveries, unseen_part
from receiver.openapi import openapi_document
from receiver.payloads.hubspot import HubSpotEvent
from receiver.payloads.zoho import ZohoNotification
from receiver.receive import (
    check_header_size,
    declared_length,
    parse_json,
    read_capped,
    require_json,
    require_shallow,
)
from receiver.server import BODY_RECEIVED
from receiver.validate import validate_hubspot, validate_zoho, zoho_events
from receiver.verify import HubSpotSignatureHeaders, hubspot_uri, verify_hubspot, verify_zoho
from workers import keys
from workers.contract import ChangeEvent
from workers.metrics import CONTENT_TYPE_LATEST, count_webhook, exposition
from workers.metrics_scrape import StateQuery, read_state, state_query
from workers.queue import COALESCED, DUPLICATE, QUEUED, SEEN, Outcome, event_job

logger = logging.getLogger("crmflow.receiver")

T = TypeVar("T")
# Bodies larger than this are parsed and validated in a thread, LARGE_BODIES_AT_ONCE at most (see
# _off_the_loop_if_large).
OFF_LOOP_BYTES = 64 * 1024
LARGE_BODIES_AT_ONCE = 2


@dataclass(frozen=True)
class ReceiverState:
    """What the routes share: settings, the queue connection, and the turns to parse a large body."""

    config: ReceiverConfig
    redis: ArqRedis
    # Every webhook's jobs go to Redis through it, together with those of the requests arriving alongside.
    batch: EnqueueBatch
    # Parsing a 1 MiB callback of 47,000 ids takes about 60 MiB for a moment: at most this many at once,
    # whatever RECEIVER_MAX_REQUESTS allows (the work is CPU-bound: more at once would not finish sooner).
    large_bodies: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LARGE_BODIES_AT_ONCE))
    # What GET /metrics reads from Redis besides the queue (workers/metrics_scrape.py).
    scrape: StateQuery = field(default_factory=state_query)


def _state(request: Request) -> ReceiverState:
    state: ReceiverState = request.app.state.crmflow
    return state


async def _body(request: Request, state: ReceiverState) -> bytes:
    config = state.config
    check_header_size(request.scope["headers"])
    require_json(request.headers.getlist("content-type"))
    declared = declared_length(request.headers.getlist("content-length"), max_bytes=config.max_body_bytes)
    return await read_capped(
        declared,
        request.stream(),
        max_bytes=config.max_body_bytes,
        timeout_s=config.body_timeout_s,
        received=BODY_RECEIVED in (request.scope.get("extensions") or ()),
    )


async def _off_the_loop_if_large(state: ReceiverState, size: int, work: Callable[[], T]) -> T:
    """`work()`, in a thread when the body is large, so that no request holds the event loop for long.

    Parsing and validating a body is linear in its size, but a 1 MiB callback (about 50,000 records) still
    takes a few hundred milliseconds of CPU; in a thread, other requests and /healthz are answered meanwhile.
    Small bodies, nearly all of them, stay on the loop: a thread hop would cost more than the work.
    """
    if size <= OFF_LOOP_BYTES:
        return work()
    async with state.large_bodies:
        return await asyncio.to_thread(work)


def _accepted(queued: int, duplicates: int, ignored: int) -> Response:
    body = orjson.dumps({"status": "accepted", "queued": queued, "duplicates": duplicates, "ignored": ignored})
    return Response(body, media_type="application/json")


def _now_ms() -> int:
    return int(time.time() * 1000)


async def zoho_webhook(request: Request) -> Response:
    """Accept a Zoho Notification API callback: one job per record, answered only once Redis has them all."""
    state = _state(request)
    token = state.config.zoho_notify_token
    assert token is not None  # the route exists only when Zoho is configured
    body = await _body(request, state)

    def accept() -> tuple[ZohoNotification, list[ChangeEvent]]:
        payload = parse_json(body)
        # The token is checked on the very object that is then validated and queued (a key given twice keeps
        # its last value for both), and before anything walks the whole body.
        verify_zoho(payload, expected_token=token.get_secret_value(), channel_ids=state.config.zoho_channel_ids)
        require_shallow(payload)
        notification = validate_zoho(payload)
        return notification, zoho_events(notification)

    notification, events = await _off_the_loop_if_large(state, len(body), accept)
    now_ms = _now_ms()
    outcomes = await state.batch.enqueue([event_job(event, now_ms) for event in events], notified_by="zoho")
    queued, coalesced, duplicates = outcomes.count(QUEUED), outcomes.count(COALESCED), outcomes.count(DUPLICATE)
    ignored = len(set(notification.ids)) - len(events)
    logger.info(
        "zoho %s %s: %d queued, %d coalesced, %d duplicate, %d ignored (channel %s)",
        notification.module,
        notification.operation,
        queued,
        coalesced,
        duplicates,
        ignored,
        notification.channel_id,
    )
    count_webhook("zoho", queued, coalesced, duplicates, ignored)
    # An event folded into its record's queued job is accepted and will be fetched: queued, for the sender.
    return _accepted(queued + coalesced, duplicates, ignored)


def public_uri(request: Request, base_url: str) -> str:
    """The URI HubSpot signed: PUBLIC_BASE_URL plus the path exactly as sent (still percent-encoded) and query."""
    raw_path = request.scope.get("raw_path")
    # ASGI's raw_path has no query string; some servers and test transports include it anyway.
    path = raw_path.split(b"?", 1)[0].decode("latin-1") if raw_path else quote(request.scope["path"])
    return hubspot_uri(base_url, path, request.scope.get("query_string", b"").decode("latin-1"))


async def hubspot_webhook(request: Request) -> Response:
    """Accept a signed HubSpot batch: verify the raw bytes, then one job per record served, new events only."""
    state = _state(request)
    config = state.config
    assert config.hubspot_client_secret is not None and config.public_base_url is not None
    body = await _body(request, state)
    headers = request.headers
    verify_hubspot(
        method=request.method,
        uri=public_uri(request, config.public_base_url),
        body=body,
        headers=HubSpotSignatureHeaders(
            v3=headers.get("x-hubspot-signature-v3"),
            timestamp=headers.get("x-hubspot-request-timestamp"),
            legacy=headers.get("x-hubspot-signature"),
            legacy_version=headers.get("x-hubspot-signature-version"),
        ),
        secret=config.hubspot_client_secret.get_secret_value(),
        now_ms=int(time.time() * 1000),
        accept_legacy=config.hubspot_accept_v1,
    )

    def accept() -> list[HubSpotEvent]:
        payload = parse_json(body)
        require_shallow(payload)
        return validate_hubspot(payload)

    events = await _off_the_loop_if_large(state, len(body), accept)
    deliveries = hubspot_deliveries(events)
    counts = {QUEUED: 0, COALESCED: 0, DUPLICATE: deliveries.repeated}
    records = deliveries.records
    notified_by: str | None = "hubspot"
    # A job some of whose events were seen already is made again from the others, in a further call.
    while records or notified_by:
        now_ms = _now_ms()
        jobs = [event_job(record.change(), now_ms, record.seen) for record in records]
        outcomes = await state.batch.enqueue(jobs, notified_by=notified_by)
        records, notified_by = _hubspot_outcomes(records, outcomes, counts), None
    ignored = len(events) - deliveries.served
    queued, coalesced, duplicates = counts[QUEUED], counts[COALESCED], counts[DUPLICATE]
    logger.info(
        "hubspot batch of %d: %d queued, %d coalesced, %d duplicate, %d ignored",
        len(events),
        queued,
        coalesced,
        duplicates,
        ignored,
    )
    count_webhook("hubspot", queued, coalesced, duplicates, ignored)
    return _accepted(queued + coalesced, duplicates, ignored)


def _hubspot_outcomes(records: list[Delivery], outcomes: list[Outcome], counts: dict[int, int]) -> list[Delivery]:
    """Count each record's outcome (an event seen already is a duplicate); return the records to send again."""
    again = []
    for record, outcome in zip(records, outcomes, strict=True):
        if isinstance(outcome, list):
            counts[DUPLICATE] += sum(outcome)
            again.append(unseen_part(record, outcome))
        elif outcome == SEEN:
            counts[DUPLICATE] += len(record.events)
        else:
            counts[outcome] += 1
    return again


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: Redis accepts a write (a small key with a TTL) within a second, as queueing a job needs.

    A PING would pass while Redis refuses writes (maxmemory with noeviction, a read-only replica).
    """
    try:
        await asyncio.wait_for(_state(request).redis.set(keys.READY_PROBE, b"1", ex=keys.READY_PROBE_TTL_S), 1.0)
    except (RedisError, OSError, TimeoutError) as exc:
        return JSONResponse({"status": "unavailable", "redis": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready", "sources": _state(request).config.sources})


async def metrics(request: Request) -> Response:
    """Prometheus metrics: this receiver's counters, and the shared state read from Redis in one round trip
    (without it, when Redis does not answer within a second: crmflow_redis_up 0)."""
    state = _state(request)
    now_s = time.time()
    shared = await read_state(state.redis, state.scrape, now_s)
    return Response(exposition(shared, now_s), headers={"content-type": CONTENT_TYPE_LATEST})


def _openapi_route(config: ReceiverConfig) -> Route:
    document = openapi_document(config)

    async def openapi(request: Request) -> Response:
        """The receiver's OpenAPI document (only the sources this receiver serves)."""
        return JSONResponse(document)

    return Route("/openapi.json", openapi, methods=["GET"])


def routes_for(config: ReceiverConfig) -> list[Route]:
    """The receiver's routes; a source that is not configured has none (its webhook path answers 404)."""
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        _openapi_route(config),
    ]
    if "zoho" in config.sources:
        routes.append(Route("/webhooks/zoho", zoho_webhook, methods=["POST"]))
    if "hubspot" in config.sources:
        # HubSpot signs the exact URL it calls, so a target URL with a trailing slash is served as is.
        routes.append(Route("/webhooks/hubspot", hubspot_webhook, methods=["POST"]))
        routes.append(Route("/webhooks/hubspot/", hubspot_webhook, methods=["POST"]))
    return routes
