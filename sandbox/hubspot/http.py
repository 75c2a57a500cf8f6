"""HTTP helpers shared by the HubSpot routes: JSON bodies, query lists, answers, and error translation."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from sandbox.hubspot.catalogue import ObjectType, resolve_object_type
from sandbox.hubspot.errors import HubSpotApiError, invalid_json, unknown_object_type

Owner = TypeVar("Owner")
Handler = Callable[[Owner, Request], Awaitable[Response]]


def hubspot_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def error_answer(error: HubSpotApiError, headers: Mapping[str, str] | None = None) -> Response:
    return hubspot_response(error.body(), error.status, headers)


def guarded(handler: Handler[Owner]) -> Handler[Owner]:
    """Turn HubSpotApiError raised by a handler into HubSpot's error answer."""

    @functools.wraps(handler)
    async def run(self: Owner, request: Request) -> Response:
        try:
            return await handler(self, request)
        except HubSpotApiError as error:
            return error_answer(error)

    return run


async def json_body(request: Request) -> Any:
    """The decoded JSON body; VALIDATION_ERROR when it is missing or not JSON."""
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_json(str(exc) if raw else "a JSON body is required") from None


def query_list(query: QueryParams, name: str) -> list[str]:
    """A list parameter given comma-separated (`a,b`) or repeated (`name=a&name=b`), blanks dropped."""
    return [item.strip() for value in query.getlist(name) for item in value.split(",") if item.strip()]


def query_flag(query: QueryParams, name: str) -> bool:
    return query.get(name, "false").strip().lower() == "true"


def object_type_param(request: Request, key: str, *, v3: bool = False) -> ObjectType:
    """The object type named by a path parameter; VALIDATION_ERROR for a type the sandbox does not know."""
    text: str = request.path_params[key]
    object_type = resolve_object_type(text, v3=v3)
    if object_type is None:
        raise unknown_object_type(text)
    return object_type
