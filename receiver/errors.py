"""The receiver's error tree; receiver/app.py turns each into an HTTP answer.

* WebhookError                 a request the sender must not retry as is (4xx)
  - UnsupportedMediaTypeError  415  body is not declared as JSON
  - PayloadTooLargeError       413  body over the size cap
  - HeadersTooLargeError       431  request headers over their cap
  - RequestTimeoutError        408  body not received within RECEIVER_BODY_TIMEOUT_S
  - MalformedRequestError      400  conflicting headers, or a body that does not match its Content-Length
  - MalformedJsonError         400  body is not valid JSON (or not UTF-8, or nested too deep)
  - AuthenticationError        401  token or channel does not match; nothing is queued
  - SchemaError                422  JSON does not match the sender's documented payload
* QueueUnavailableError        503  Redis did not accept the jobs; the sender should retry (raised by the queue,
                                    workers/queue.py, through receiver/batch.py; defined in workers/errors.py)
"""

from __future__ import annotations

from typing import Any


class WebhookError(Exception):
    """A webhook request that is rejected for what the client sent."""

    status_code = 400
    code = "bad_request"
    # The body may be partly unread: the answer asks the server to close the connection rather than drain it.
    close_connection = False

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
    close_connection = True


class HeadersTooLargeError(WebhookError):
    """The request's headers are larger than the receiver accepts."""

    status_code = 431
    code = "headers_too_large"


class RequestTimeoutError(WebhookError):
    """The body did not arrive in time: the sender trickles it, or stopped sending without hanging up."""

    status_code = 408
    code = "request_timeout"
    close_connection = True


class MalformedRequestError(WebhookError):
    """The request's framing is inconsistent (e.g. a body shorter than its Content-Length)."""

    status_code = 400
    code = "malformed_request"
    close_connection = True


class MalformedJsonError(WebhookError):
    """The request body is not valid UTF-8 JSON."""

    status_code = 400
    code = "malformed_json"


class AuthenticationError(WebhookError):
    """The notification's token or channel does not match the configuration. `setting`: the setting a present
    but different token, channel or signature disagrees with (None when the proof is missing or stale)."""

    status_code = 401
    code = "unauthenticated"

    def __init__(self, detail: str, *, setting: str | None = None) -> None:
        super().__init__(detail)
        self.setting = setting


class SchemaError(WebhookError):
    """The JSON does not match the sender's payload format; `errors` lists the failing fields."""

    status_code = 422
    code = "invalid_payload"
