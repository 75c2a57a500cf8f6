"""create_app: the CRM sandbox as one Starlette app: Zoho (accounts server, CRM API), HubSpot API, control API.

One host serves both CRMs: HubSpot's paths (/crm/objects/..., /crm/v3/objects/..., /crm/associations/...,
/crm/properties/...) are routed before Zoho's /crm/{version}/..., so a HubSpot client uses the sandbox's base URL as
its API base.
"""

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
from sandbox.hubspot.api import associations_app, objects_app
from sandbox.hubspot.control import hubspot_control_routes
from sandbox.hubspot.paths import ASSOCIATIONS_MOUNT, OBJECTS_MOUNT, PROPERTIES_MOUNT, V3_OBJECTS_MOUNT
from sandbox.hubspot.properties import properties_app
from sandbox.runtime import SandboxRuntime, utc_now
from sandbox.traffic import TrafficMiddleware
from sandbox.zoho.api import crm_app
from sandbox.zoho.oauth_api import token_endpoint

__all__ = ["SandboxConfig", "SandboxRuntime", "create_app"]


def create_app(
    config: SandboxConfig,
    *,
    http: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Build a sandbox.

    http: the client that POSTs Zoho notification callbacks and HubSpot webhooks (inject an
        `httpx.MockTransport` client in tests); when None the sandbox creates its own on first use and closes
        it at lifespan shutdown.
    clock: returns the current time as an aware datetime (default: the system clock in UTC); it drives
        seed times, token expiry, Modified_Time, the Rescheduled_Time rule, channel expiry, and on the
        HubSpot side history timestamps, occurredAt, webhook timestamps and the rate-limit windows.
    The runtime (state and logs) is available as `app.state.runtime` for in-process inspection; lifespan
    shutdown (or `await runtime.aclose()`) stops HubSpot webhook deliveries still pending or in flight.
    """
    runtime = SandboxRuntime(config, clock=clock or utc_now, http=http)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await runtime.aclose()

    app = Starlette(
        routes=[
            Route("/oauth/v2/token", token_endpoint(runtime), methods=["POST"]),
            Mount(OBJECTS_MOUNT, app=objects_app(runtime.hubspot)),
            Mount(V3_OBJECTS_MOUNT, app=objects_app(runtime.hubspot, v3=True)),
            Mount(ASSOCIATIONS_MOUNT, app=associations_app(runtime.hubspot)),
            Mount(PROPERTIES_MOUNT, app=properties_app(runtime.hubspot, runtime.custom_fields)),
            Mount("/crm", app=crm_app(runtime)),
            Mount(
                "/_sandbox",
                routes=[*control_routes(runtime), Mount("/hubspot", routes=hubspot_control_routes(runtime.hubspot))],
            ),
        ],
        middleware=[Middleware(TrafficMiddleware, runtime=runtime)],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
