"""The receiver's error tree; receiver/app.py turns each into an HTTP answer.

* WebhookError                 a request the sender must not retry as is (4xx)
  - UnsupportedMediaTypeError  415  body is not declared as JSON
  - PayloadTooLargeError       413  body over the size cap
  - MalformedJsonError         400  body is not valid JSON (or not UTF-8)
  - AuthenticationError        401  token or channel does not match; nothing is queued
  - SchemaError                422  JSON does not match the sender's documented payload
* QueueUnavailableError        503  Redis did not accept the jobs; the sender should retry
"""

from __future__ import annotations

from typing import Any


class WebhookError(Exception):
    """A webhook request that is rejected for what the client sent."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class UnsupportedMediaTypeError(WebhookError):
    """The request body is not declared as JSON."""

    status_code = 415
    code = "unsupported_media_type"


class PayloadTooLargeError(WebhookError):
    """The request body is larger than the configured cap."""

    status_code = 413
    code = "payload_too_large"


class MalformedJsonError(WebhookError):
    """The request body is not valid UTF-8 JSON."""

    status_code = 400
    code = "malformed_json"


class AuthenticationError(WebhookError):
    """The notification's token or channel does not match the configuration."""

    status_code = 401
    code = "unauthenticated"


class SchemaError(WebhookError):
    """The JSON does not match the sender's payload format; `errors` lists the failing fields."""

    status_code = 422
    code = "invalid_payload"


class QueueUnavailableError(Exception):
    """Redis could not take the jobs; answered with 503 so that the sender retries."""
