"""Request-body checks shared by Zoho's write endpoints: a JSON object holding a bounded array. Pure."""

from __future__ import annotations

from typing import Any

import orjson

from sandbox.zoho.errors import array_invalid, array_missing, array_too_long, invalid_body


def parse_json_body(raw: bytes) -> Any:
    """The decoded body; INVALID_DATA when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_body() from None


def records_array(body: Any, maximum: int, key: str = "data") -> list[Any]:
    """`body[key]` as a non-empty list of at most `maximum` items, or the request-level error Zoho gives.

    Zoho's answer for more than the allowed records is INVALID_DATA with `maximum_length` on `$.data`
    (its OpenAPI examples for PUT /Appointments__s); a missing or empty array is MANDATORY_NOT_FOUND.
    """
    if not isinstance(body, dict):
        raise invalid_body()
    items = body.get(key)
    if items is None or items == []:
        raise array_missing(key)
    if not isinstance(items, list):
        raise array_invalid(key)
    if len(items) > maximum:
        raise array_too_long(maximum, key)
    return items
