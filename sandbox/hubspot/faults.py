"""Fault answers on the HubSpot paths: HubSpot-shaped error bodies and which rate-limit policy they exhaust. Pure.

A rule's `body` is sent as given (a string as plain text), as on the Zoho paths. Without one, 429 answers
with the TEN_SECONDLY_ROLLING body, or the DAILY body when the rule says `rate_limit_policy: "DAILY"`; other
statuses answer `{status:"error", message, correlationId, category}`. The 5xx bodies and their INTERNAL_ERROR
category are the sandbox's guess (HubSpot documents no 5xx body); clients should key on the status alone.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from pydantic import JsonValue

from sandbox.hubspot.errors import AUTH_MESSAGE, RatePolicy, correlation_id, rate_limit_body

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("VALIDATION_ERROR", "Invalid input"),
    401: ("INVALID_AUTHENTICATION", AUTH_MESSAGE),
    403: (
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. "
        "Read more about required scopes here: https://developers.hubspot.com/scopes.",
    ),
    404: ("OBJECT_NOT_FOUND", "resource not found"),
    409: ("CONFLICT", "Conflict"),
    423: ("LOCKED", "The resource is locked; retry after at least 2 seconds"),
    500: ("INTERNAL_ERROR", "internal error"),
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def fault_policy(status: int, body: JsonValue, policy: RatePolicy | None) -> RatePolicy | None:
    """The rate-limit policy a 429 fault reports as exhausted (from the rule, or the given body's policyName)."""
    if status != 429:
        return None
    if policy is not None:
        return policy
    named = body.get("policyName") if isinstance(body, dict) else None
    return "DAILY" if named == "DAILY" else "TEN_SECONDLY_ROLLING"


def fault_body(status: int, policy: RatePolicy | None, portal_id: int) -> dict[str, Any]:
    if status == 429:
        return rate_limit_body(policy or "TEN_SECONDLY_ROLLING", portal_id)
    category, message = _ERRORS.get(status, ("INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR", ""))
    return {
        "status": "error",
        "message": message or _phrase(status),
        "correlationId": correlation_id(),
        "category": category,
    }


def hubspot_fault_answer(status: int, body: JsonValue, policy: RatePolicy | None, portal_id: int) -> tuple[bytes, str]:
    """The bytes and media type of a fault response on a HubSpot path."""
    if isinstance(body, str):
        return body.encode(), "text/plain"
    if body is not None:
        return orjson.dumps(body), "application/json"
    return orjson.dumps(fault_body(status, policy, portal_id)), "application/json"
