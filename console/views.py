"""What the pages share: the templates (autoescaped), rendering with the session's CSRF token, JSON or HTML by
the Accept header, and reading a form whose CSRF token must match."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from console import csrf
from console.middleware import Principal

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 256 * 1024


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    return env


def when(moment: datetime | None) -> str:
    """A time as the console shows it: UTC, to the second."""
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Views:
    """The template environment and the key CSRF tokens are signed with."""

    env: jinja2.Environment
    key: bytes

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        principal = principal_of(request)
        session_id = None if principal is None else principal.session_id
        token = None if session_id is None else csrf.session_token(self.key, session_id)
        page = self.env.get_template(name).render(request=request, csrf_token=token, principal=principal, **context)
        return HTMLResponse(page, status_code=status_code)

    async def form(self, request: Request) -> dict[str, list[str]]:
        """The POSTed form; 403 when a session's request lacks its CSRF token or comes from another origin.

        A bearer-token client needs no CSRF token: a browser never adds that header by itself. A request
        without a principal (a public route) is refused: it is neither.
        """
        principal = principal_of(request)
        if principal is None:
            # Only a route RequireLogin guards has a principal: never skip the CSRF check for want of one.
            raise HTTPException(403, "this form needs a login session or the bearer token")
        fields = await read_form(request)
        if principal.session_id is not None:
            same = csrf.same_origin(request.headers.get("origin"), request.url.scheme, request.headers.get("host"))
            given = first(fields, csrf.FIELD)
            if not same or not csrf.valid(csrf.session_token(self.key, principal.session_id), given):
                raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page and try again")
        return fields


def first(fields: dict[str, list[str]], name: str) -> str | None:
    """A form field's first value, or None when the form lacks it."""
    values = fields.get(name)
    return values[0] if values else None


def principal_of(request: Request) -> Principal | None:
    """Who RequireLogin let through; None on a public route (the login form), where nobody is logged in."""
    principal = request.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else None


async def read_form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body (what the console's forms send); 413 when too large, 415 for
    another type."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        return parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise HTTPException(400, "the form is not UTF-8") from None


def wants_json(request: Request) -> bool:
    """JSON when the client asks for it (Accept: application/json); HTML otherwise."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def json_response(data: Any, status_code: int = 200) -> Response:
    return JSONResponse(data, status_code=status_code)
