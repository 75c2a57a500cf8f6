"""The receiver's ASGI app: routes, the queue connection's lifetime, and errors translated into HTTP answers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from receiver.config import ReceiverConfig
from receiver.enqueue import connect_queue
from receiver.errors import QueueUnavailableError, WebhookError
from receiver.routes import ReceiverState, routes_for

logger = logging.getLogger("crmflow.receiver")


async def _webhook_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebhookError)
    logger.warning("%s %s rejected: %d %s", request.method, request.url.path, exc.status_code, exc.detail)
    body: dict[str, object] = {"error": exc.code, "detail": exc.detail}
    if exc.errors is not None:
        body["errors"] = exc.errors
    return JSONResponse(body, status_code=exc.status_code)


async def _queue_unavailable(request: Request, exc: Exception) -> Response:
    logger.error("%s %s: queue unavailable: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"error": "queue_unavailable", "detail": "the queue is unavailable; retry later"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    # The sender hung up mid-body: nothing was queued, and nobody is left to read this answer.
    return JSONResponse({"error": "client_disconnected"}, status_code=400)


def create_app(config: ReceiverConfig, *, redis: ArqRedis | None = None) -> Starlette:
    """Build the receiver; pass `redis` to share a connection (tests), else one is made from REDIS_URL."""
    queue = redis if redis is not None else connect_queue(config.redis_url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if redis is None:
            await queue.aclose()

    app = Starlette(
        routes=routes_for(config),
        lifespan=lifespan,
        exception_handlers={
            WebhookError: _webhook_error,
            QueueUnavailableError: _queue_unavailable,
            ClientDisconnect: _client_disconnect,
        },
    )
    app.state.crmflow = ReceiverState(config=config, redis=queue)
    return app
