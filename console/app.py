"""The console's Starlette app: login, events, dead letters and health, every page behind the token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from console.auth import LoginThrottle, Sessions, signing_key
from console.config import ConsoleConfig
from console.middleware import RequireLogin, SecurityHeaders
from console.pages.deadletters import DeadLetterPages
from console.pages.events import EventPages
from console.pages.health import HealthPage
from console.pages.login import Login
from console.views import Views, environment, json_response, wants_json
from workers.queue import connect_queue

STATIC = Path(__file__).parent / "static"


class _Connections:
    """The console's Redis connection (given by tests, or its own) and HTTP client, closed at shutdown."""

    def __init__(self, url: str, given: ArqRedis | None, http: bool) -> None:
        self.given = given
        self.redis = given if given is not None else connect_queue(url)
        self.http = httpx.AsyncClient(timeout=5.0) if http else None

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self.http is not None:
                await self.http.aclose()
            if self.given is None:
                await self.redis.aclose()


def create_app(config: ConsoleConfig, redis: ArqRedis | None = None) -> Starlette:
    """The console; `redis` is a connection to use instead of opening one on REDIS_URL (tests)."""
    token = config.console_token.get_secret_value().strip()
    key = signing_key(token)
    connections = _Connections(config.redis_url, redis, http=config.receiver_url is not None)
    views = Views(environment(), key)
    sessions = Sessions(connections.redis, config.session_s)
    # One count of failed logins per address, the login form's and wrong bearer tokens' alike.
    throttle = LoginThrottle()
    routes: list[BaseRoute] = [
        Route("/", _home, methods=["GET"]),
        *Login(views, sessions, token, throttle).routes(),
        *EventPages(views, connections.redis).routes(),
        *DeadLetterPages(views, connections.redis).routes(),
        *HealthPage(views, connections.redis, connections.http, config.receiver_url).routes(),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _problem(request, views, exc.status_code, exc.detail)

    async def unavailable(request: Request, exc: Exception) -> Response:
        # Redis's address is in the console's start-up line (never its password); the answer names only the error.
        return _problem(request, views, 503, f"Redis is unavailable: {type(exc).__name__}; try again in a moment")

    middleware = [
        Middleware(SecurityHeaders),
        Middleware(RequireLogin, token=token, key=key, sessions=sessions, throttle=throttle),
    ]
    handlers: dict[Any, Any] = {HTTPException: error, RedisError: unavailable}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=connections.lifespan)


def _problem(request: Request, views: Views, status: int, detail: str) -> Response:
    """An error as the client wants it: a page for a browser, JSON for anything else."""
    if wants_json(request) or "text/html" not in request.headers.get("accept", ""):
        return json_response({"error": detail}, status)
    return views.render(request, "error.html", status, status=status, detail=detail)


async def _home(request: Request) -> Response:
    return RedirectResponse("/events", status_code=303)
