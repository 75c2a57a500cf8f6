"""JSON responses with orjson bodies, shared by the Zoho and HubSpot routes and the control API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, background: BackgroundTask | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", background=background)
