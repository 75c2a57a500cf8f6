"""The receiver's ASGI app: routes, the queue connection's lifetime, and errors translated into HTTP answers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus

from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from receiver.batch import EnqueueBatch
from receiver.config import ReceiverConfig
from receiver.errors import AuthenticationError, WebhookError
from receiver.redact import redact, secret_pattern
from receiver.rejections import record_rejection
from receiver.routes import ReceiverState, routes_for
from receiver.server import RequestLimit
from workers.errors import QueueUnavailableError
from workers.metrics import count_rejection, declare_webhook_sources
from workers.queue import connect_queue

logger = logging.getLogger("crmflow.receiver")


async def _webhook_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebhookError)
    # Messages may quote what the request sent (a header, a field name): never let a configured secret through.
    secrets = secret_pattern(request.app.state.crmflow.config)
    detail = redact(exc.detail, secrets)
    logger.warning("%s %s rejected: %d %s", request.method, request.url.path, exc.status_code, detail)
    if isinstance(exc, AuthenticationError):  # only the webhook routes authenticate
        source = "zoho" if request.url.path.startswith("/webhooks/zoho") else "hubspot"
        await record_rejection(request.app.state.crmflow.redis, source, exc, int(time.time() * 1000))
    count_rejection(request.url.path, exc.code)
    body: dict[str, object] = {"error": exc.code, "detail": detail}
    if exc.errors is not None:
        body["errors"] = [{key: redact(str(value), secrets) for key, value in error.items()} for error in exc.errors]
    # Over the cap, too slow or cut short: the rest of the body is not worth reading, so the connection is closed.
    headers = {"connection": "close"} if exc.close_connection else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


async def _queue_unavailable(request: Request, exc: Exception) -> Response:
    logger.error("%s %s: queue unavailable: %s", request.method, request.url.path, exc)
    count_rejection(request.url.path, "queue_unavailable")
    return JSONResponse(
        {"error": "queue_unavailable", "detail": "the queue is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    # Starlette's own refusals (404 unknown path, 405 wrong method) in the same JSON shape as every other one.
    assert isinstance(exc, HTTPException)
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    count_rejection(request.url.path, code)
    return JSONResponse({"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    # The sender hung up mid-body: nothing was queued, and nobody is left to read this answer.
    logger.warning("%s %s rejected: the client hung up before sending the whole body", request.method, request.url.path)
    count_rejection(request.url.path, "client_disconnected")
    return JSONResponse(
        {"error": "client_disconnected", "detail": "the client closed the connection before sending the whole body"},
        status_code=400,
        headers={"connection": "close"},
    )


_ERROR_HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    WebhookError: _webhook_error,
    QueueUnavailableError: _queue_unavailable,
    ClientDisconnect: _client_disconnect,
    HTTPException: _http_error,
}


class WebhookRoutes:
    """The webhook routes (POST /webhooks/...), served ahead of Starlette's router; everything else goes on to it.

    A webhook is the receiver's hot path. Served here, it skips the router's matching and the exception layers
    around each route, at about 10 µs a request; its errors get the same handlers (`_ERROR_HANDLERS`, the app's
    exception_handlers), anything else reaches Starlette's 500 as before. Other methods on these paths (405)
    and every other path are the router's.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, Callable[[Request], Awaitable[Response]]]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.endpoints.get(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handler = next((_ERROR_HANDLERS[kind] for kind in type(exc).__mro__ if kind in _ERROR_HANDLERS), None)
            if handler is None:
                raise
            response = await handler(request, exc)
        await response(scope, receive, send)


def create_app(config: ReceiverConfig, *, redis: ArqRedis | None = None) -> Starlette:
    """Build the receiver; pass `redis` to share a connection (tests), else one is made from REDIS_URL."""
    queue = redis if redis is not None else connect_queue(config.redis_url)
    # Made here rather than at start-up, so that an app served without its lifespan (the tests) has one too; it
    # needs no event loop until the first request.
    batch = EnqueueBatch(queue)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await batch.aclose()  # every request handed in has its answer before the connection goes
        if redis is None:
            await queue.aclose()

    routes = routes_for(config)
    webhooks = {route.path: route.endpoint for route in routes if route.path.startswith("/webhooks/")}
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            # At most RECEIVER_MAX_REQUESTS requests at once (JSON 503 beyond); receiver/server.py.
            Middleware(RequestLimit, max_requests=config.max_requests),
            Middleware(WebhookRoutes, endpoints=webhooks),
        ],
        exception_handlers=dict(_ERROR_HANDLERS),
    )
    app.state.crmflow = ReceiverState(config=config, redis=queue, batch=batch)
    declare_webhook_sources(config.sources)
    return app
