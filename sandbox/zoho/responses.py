"""Starlette responses in Zoho's shapes: request-level errors, 204s, multi-record answers."""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.responses import Response

from sandbox.responses import json_response
from sandbox.zoho.errors import ZohoApiError
from sandbox.zoho.listing import ListPage
from sandbox.zoho.writes import WriteOutcome


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
