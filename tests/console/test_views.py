"""The console's views (console/views.py): who made a request, and the CSRF check of its forms."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from console.middleware import Principal
from console.views import Views, environment, principal_of

BODY = b"id=0123456789abcdef"


def post(state: dict[str, object]) -> Request:
    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    headers = [(b"content-type", b"application/x-www-form-urlencoded"), (b"host", b"console.test")]
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers, "state": state, "scheme": "http"}
    return Request(scope, receive)


def test_a_request_no_login_let_through_has_no_principal() -> None:
    assert principal_of(post({})) is None
    assert principal_of(post({"principal": Principal()})) == Principal()


async def test_a_form_without_a_principal_is_refused_not_taken_for_a_bearer_client() -> None:
    views = Views(environment(), b"k" * 32)

    with pytest.raises(HTTPException) as refused:
        await views.form(post({}))

    assert refused.value.status_code == 403
    assert await views.form(post({"principal": Principal()})) == {"id": ["0123456789abcdef"]}
