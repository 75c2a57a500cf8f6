"""HubSpot API error bodies: `{status, message, correlationId, category, ...}` and the 429 rate-limit bodies. Pure.

Shapes follow HubSpot's `Error` schema and error-handling page (docs/hubspot.md, "Rate limits and errors"); each
body gets a fresh `correlationId` (a UUID). Messages quoted from real HubSpot answers: the 401 text, "resource
not found", the property-history batch limit, "Could not get some ... objects", "Property values were not valid:
[...]" and both 429 bodies. Other messages are the sandbox's own wording (clients should key on status and
category, never on message text).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

import orjson

RatePolicy = Literal["TEN_SECONDLY_ROLLING", "DAILY", "SECONDLY"]

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
HISTORY_LIMIT_MESSAGE = (
    "The maximum number of inputs supported in a batch request for property histories is 50. "
    "Please reduce the number of items and try again"
)
MAX_BATCH_INPUTS = 100
MAX_HISTORY_BATCH_INPUTS = 50


def correlation_id() -> str:
    return str(uuid.uuid4())


class HubSpotApiError(Exception):
    """An error answering the whole request."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(f"{status} {category}: {message}")
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
            "category": self.category,
        }
        if self.context is not None:
            body["context"] = self.context
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def not_authenticated() -> HubSpotApiError:
    return HubSpotApiError(401, "INVALID_AUTHENTICATION", AUTH_MESSAGE)


def object_not_found() -> HubSpotApiError:
    return HubSpotApiError(404, "OBJECT_NOT_FOUND", "resource not found")


def route_not_found(method: str, path: str) -> HubSpotApiError:
    return HubSpotApiError(404, "OBJECT_NOT_FOUND", f"No endpoint for {method} {path}")


def method_not_allowed(method: str) -> HubSpotApiError:
    return HubSpotApiError(405, "VALIDATION_ERROR", f"HTTP method {method} is not supported by this resource")


def validation_error(
    message: str, *, errors: list[dict[str, Any]] | None = None, context: dict[str, list[str]] | None = None
) -> HubSpotApiError:
    return HubSpotApiError(400, "VALIDATION_ERROR", message, errors=errors, context=context)


def invalid_json(detail: str) -> HubSpotApiError:
    return validation_error(f"Invalid input JSON: {detail}")


def unknown_object_type(text: str) -> HubSpotApiError:
    return validation_error(f"Unable to infer object type from: {text}")


def too_many_inputs(count: int) -> HubSpotApiError:
    return validation_error(
        f"The maximum number of inputs supported in a batch request is {MAX_BATCH_INPUTS}, got {count}. "
        "Please reduce the number of items and try again"
    )


def too_many_history_inputs() -> HubSpotApiError:
    return validation_error(HISTORY_LIMIT_MESSAGE)


@dataclass(frozen=True)
class PropertyProblem:
    """Why one property value was refused (`code` as in HubSpot's `errors[].code`)."""

    name: str
    code: str
    message: str


def property_errors(problems: list[PropertyProblem], portal_id: int) -> HubSpotApiError:
    """HubSpot's answer to invalid property values: one summary message and one `errors` entry per problem."""
    summary = [
        {
            "isValid": False,
            "message": problem.message,
            "error": problem.code,
            "name": problem.name,
            "localizedErrorMessage": problem.message,
            "portalId": portal_id,
        }
        for problem in problems
    ]
    errors: list[dict[str, Any]] = [
        {"message": problem.message, "code": problem.code, "context": {"propertyName": [problem.name]}}
        for problem in problems
    ]
    message = "Property values were not valid: " + orjson.dumps(summary).decode()
    return validation_error(message, errors=errors)


def rate_limit_body(policy: RatePolicy, portal_id: int) -> dict[str, Any]:
    """The 429 body of the ten-secondly (private app), daily or search (secondly) limit."""
    if policy == "SECONDLY":
        # The search API's own limit: the message HubSpot's Node SDK keys on (docs/hubspot.md, "Rate limits").
        return {
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": "SECONDLY",
        }
    if policy == "DAILY":
        return {
            "status": "error",
            "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": "DAILY",
            "requestId": correlation_id(),
        }
    return {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": "TEN_SECONDLY_ROLLING",
        "groupName": f"publicapi:private-app-api-calls-ten-secondly:{portal_id}",
    }


def secondly_limit_body() -> dict[str, Any]:
    """The 429 body of the search endpoints' own limit (message as HubSpot's Node client matches it)."""
    return {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": "SECONDLY",
    }
