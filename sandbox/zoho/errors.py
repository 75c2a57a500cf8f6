"""Zoho CRM error bodies: request-level errors (raised) and per-record errors (returned). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ZohoApiError(Exception):
    """An error that answers the whole request: `{"code","details","message","status":"error"}`."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = details if details is not None else {}

    def body(self) -> dict[str, Any]:
        """The JSON body Zoho sends for this error."""
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


@dataclass(frozen=True)
class RecordError:
    """One failed record of a multi-record write, reported in place inside `data` (or `watch`)."""

    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """The per-record JSON object."""
        return {"code": self.code, "details": self.details, "message": self.message, "status": "error"}


def json_path(index: int, api_name: str, key: str = "data") -> str:
    """`$.data[0].Appointment_Start_Time`: where a field sits in the request body."""
    return f"$.{key}[{index}].{api_name}"


def field_ref(index: int, api_name: str, key: str = "data") -> dict[str, Any]:
    """The `api_name` + `json_path` pair Zoho puts in field-level error details."""
    return {"api_name": api_name, "json_path": json_path(index, api_name, key)}


# ---- request-level errors -------------------------------------------------------------------------------


def invalid_token() -> ZohoApiError:
    return ZohoApiError(401, "INVALID_TOKEN", "invalid oauth token")


def invalid_url_pattern() -> ZohoApiError:
    return ZohoApiError(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one")


def invalid_module() -> ZohoApiError:
    return ZohoApiError(400, "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0})


def invalid_request_method() -> ZohoApiError:
    return ZohoApiError(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")


def invalid_id_in_url(resource_path_index: int = 1) -> ZohoApiError:
    return ZohoApiError(
        400, "INVALID_DATA", "the id given seems to be invalid", {"resource_path_index": resource_path_index}
    )


def required_param_missing(param_name: str) -> ZohoApiError:
    return ZohoApiError(
        400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": param_name}
    )


def invalid_param(param_name: str) -> ZohoApiError:
    return ZohoApiError(400, "INVALID_DATA", "invalid data", {"param_name": param_name})


def fields_limit_exceeded(limit: int) -> ZohoApiError:
    return ZohoApiError(
        400, "LIMIT_EXCEEDED", "the number of fields exceeds the limit", {"param_name": "fields", "limit": limit}
    )


def discrete_pagination_limit(limit: int) -> ZohoApiError:
    return ZohoApiError(
        400,
        "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
        f"You can only get the first {limit} records without using page_token param",
        {"limit": limit},
    )


def ambiguity(first: str, second: str) -> ZohoApiError:
    return ZohoApiError(
        400,
        "AMBIGUITY_DURING_PROCESSING",
        f"You cannot use both {first} and {second}",
        {"ambiguity_due_to": [{"param_name": first}, {"param_name": second}]},
    )


def invalid_body() -> ZohoApiError:
    return ZohoApiError(400, "INVALID_DATA", "invalid data", {"expected_data_type": "jsonobject"})


def array_missing(key: str = "data") -> ZohoApiError:
    return ZohoApiError(
        400, "MANDATORY_NOT_FOUND", "required field not found", {"api_name": key, "json_path": f"$.{key}"}
    )


def array_invalid(key: str = "data") -> ZohoApiError:
    return ZohoApiError(
        400,
        "INVALID_DATA",
        "invalid data",
        {"expected_data_type": "jsonarray", "api_name": key, "json_path": f"$.{key}"},
    )


def array_too_long(maximum: int, key: str = "data") -> ZohoApiError:
    return ZohoApiError(
        400,
        "INVALID_DATA",
        "invalid data",
        {"maximum_length": maximum, "api_name": key, "json_path": f"$.{key}"},
    )


# ---- per-record errors ----------------------------------------------------------------------------------


def record_invalid(
    index: int, api_name: str, message: str = "invalid data", key: str = "data", **extra: Any
) -> RecordError:
    return RecordError(400, "INVALID_DATA", message, {**extra, **field_ref(index, api_name, key)})


def record_not_object(index: int, key: str = "data") -> RecordError:
    return RecordError(
        400, "INVALID_DATA", "invalid data", {"expected_data_type": "jsonobject", "json_path": f"$.{key}[{index}]"}
    )


def mandatory_not_found(index: int, api_name: str, key: str = "data") -> RecordError:
    return RecordError(400, "MANDATORY_NOT_FOUND", "required field not found", field_ref(index, api_name, key))


def invalid_record_id(index: int) -> RecordError:
    return RecordError(400, "INVALID_DATA", "the id given seems to be invalid", field_ref(index, "id"))


def dependent(code: str, index: int, api_name: str, dependee: str, message: str) -> RecordError:
    """DEPENDENT_FIELD_MISSING / DEPENDENT_FIELD_UNCHANGED / DEPENDENT_MISMATCH with the `dependee` block."""
    return RecordError(400, code, message, {"dependee": field_ref(index, dependee), **field_ref(index, api_name)})


def not_allowed(index: int, api_name: str, message: str) -> RecordError:
    return RecordError(403, "NOT_ALLOWED", message, field_ref(index, api_name))


def token_bound_mismatch() -> ZohoApiError:
    return ZohoApiError(
        400,
        "TOKEN_BOUND_DATA_MISMATCH",
        "either the page_token is invalid or the input params are added, altered or deleted",
        {"param_name": "page_token"},
    )


def expired_page_token() -> ZohoApiError:
    return ZohoApiError(400, "EXPIRED_VALUE", "the page_token has expired", {"param_name": "page_token"})


def pagination_limit(limit: int) -> ZohoApiError:
    return ZohoApiError(
        400,
        "PAGINATION_LIMIT_EXCEEDED",
        f"You can only get up to the first {limit} records using page_token param",
        {"limit": limit},
    )
