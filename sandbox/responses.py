"""Starlette responses in Zoho's shapes: orjson bodies, request-level errors, 204s, multi-record answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from sandbox.listing import ListPage
from sandbox.writes import WriteOutcome
from sandbox.zoho_errors import ZohoApiError

Endpoint = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, background: BackgroundTask | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", background=background)


def error_response(error: ZohoApiError) -> Response:
    return json_response(error.body(), error.status)


def no_content() -> Response:
    """Zoho's answer when a read finds nothing: 204 with an empty body."""
    return Response(status_code=204)


def page_response(page: ListPage) -> Response:
    return json_response(page.body()) if page.records else no_content()


def write_response(
    outcome: WriteOutcome, success_status: int, background: BackgroundTask | None, key: str = "data"
) -> Response:
    return json_response(outcome.body(key), outcome.status(success_status), background)
