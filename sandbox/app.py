"""create_app: the Zoho CRM sandbox as one Starlette app (accounts server, CRM API and control API on one host)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from sandbox.config import SandboxConfig
from sandbox.control_api import control_routes
from sandbox.oauth_api import token_endpoint
from sandbox.runtime import SandboxRuntime, utc_now
from sandbox.traffic import TrafficMiddleware
from sandbox.zoho_api import crm_app

__all__ = ["SandboxConfig", "SandboxRuntime", "create_app"]


def create_app(
    config: SandboxConfig,
    *,
    http: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build a sandbox.

    http: the client that POSTs notification callbacks (inject an `httpx.MockTransport` client in tests);
        when None the sandbox creates its own on first use and closes it at lifespan shutdown.
    clock: returns the current time as an aware datetime (default: the system clock in UTC); it drives
        seed times, token expiry, Modified_Time, the Rescheduled_Time rule and channel expiry.
    The runtime (state and logs) is available as `app.state.runtime` for in-process inspection.
    """
    runtime = SandboxRuntime(config, clock=clock or utc_now, http=http)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await runtime.aclose()

    app = Starlette(
        routes=[
            Route("/oauth/v2/token", token_endpoint(runtime), methods=["POST"]),
            Mount("/crm", app=crm_app(runtime)),
            Mount("/_sandbox", routes=control_routes(runtime)),
        ],
        middleware=[Middleware(TrafficMiddleware, runtime=runtime)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
