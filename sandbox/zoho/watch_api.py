"""`/crm/{version}/actions/watch`: enable (POST), replace (PUT), patch (PATCH), list (GET), disable (DELETE)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.responses import json_response
from sandbox.runtime import SandboxRuntime
from sandbox.zoho.errors import RecordError, invalid_request_method, required_param_missing
from sandbox.zoho.payload import parse_json_body, records_array
from sandbox.zoho.responses import no_content
from sandbox.zoho.watch import MAX_CHANNELS_PER_CALL, MODULE_IDS, SUBSCRIBED, UNSUBSCRIBED, Channel, resource_uri
from sandbox.zoho.writes import RecordSuccess, multi_status

# Zoho's OpenAPI spec answers a successful enable with 201; PUT and PATCH answer 200.
_SUCCESS_STATUS = {"POST": 201, "PUT": 200, "PATCH": 200}


def _subscribed(channel: Channel, runtime: SandboxRuntime) -> RecordSuccess:
    events = [channel.subscription(module, runtime.config.tz) for module in channel.modules()]
    return RecordSuccess(SUBSCRIBED, {"events": events})


def _unsubscribed(channel: Channel) -> list[RecordSuccess]:
    return [
        RecordSuccess(
            UNSUBSCRIBED,
            {"resource_uri": resource_uri(module), "resource_id": MODULE_IDS[module], "channel_id": channel.channel_id},
        )
        for module in channel.modules()
    ]


def _answer(results: list[RecordSuccess | RecordError], success_status: int) -> Response:
    body = {"watch": [result.body() for result in results]}
    return json_response(body, multi_status(results, success_status))


async def _write(runtime: SandboxRuntime, request: Request) -> Response:
    items = records_array(parse_json_body(await request.body()), MAX_CHANNELS_PER_CALL, key="watch")
    now = runtime.now()
    if request.method == "POST":
        outcomes = runtime.channels.enable(items, now)
    elif request.method == "PUT":
        outcomes = runtime.channels.replace(items, now)
    else:
        outcomes = runtime.channels.patch(items, now)
    results: list[RecordSuccess | RecordError] = [
        _subscribed(outcome, runtime) if isinstance(outcome, Channel) else outcome for outcome in outcomes
    ]
    return _answer(results, _SUCCESS_STATUS[request.method])


def _list(runtime: SandboxRuntime) -> Response:
    entries: list[dict[str, Any]] = [
        channel.describe(module, runtime.config.tz)
        for channel in runtime.channels.active(runtime.now())
        for module in channel.modules()
    ]
    if not entries:
        return no_content()
    info = {"per_page": 200, "count": len(entries), "page": 1, "more_records": False}
    return json_response({"watch": entries, "info": info})


def _disable(runtime: SandboxRuntime, request: Request) -> Response:
    raw = request.query_params.get("channel_ids", "")
    channel_ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not channel_ids:
        raise required_param_missing("channel_ids")
    results: list[RecordSuccess | RecordError] = []
    for outcome in runtime.channels.disable(channel_ids, runtime.now()):
        results.extend(_unsubscribed(outcome) if isinstance(outcome, Channel) else [outcome])
    return _answer(results, 200)


async def watch(runtime: SandboxRuntime, request: Request) -> Response:
    """Dispatch on the method; anything else is INVALID_REQUEST_METHOD."""
    if request.method in _SUCCESS_STATUS:
        return await _write(runtime, request)
    if request.method == "GET":
        return _list(runtime)
    if request.method == "DELETE":
        return _disable(runtime, request)
    raise invalid_request_method()
