"""What every request passes through: security headers on every answer, and no page or API without login."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from urllib.parse import quote

from redis.exceptions import RedisError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.auth import SESSION_COOKIE, LoginThrottle, Sessions, bearer, session_of, token_matches

# No inline script or style anywhere: the console's JS and CSS are files under /static.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # same-origin, not no-referrer: with no-referrer, chromium sends `Origin: null` on the forms' POSTs.
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    # Pages show records' changes (personal data): never kept in a cache.
    "cache-control": "no-store",
}
# Reachable without logging in: the login form, and the console's own CSS and JS (no data in them).
PUBLIC = ("/login", "/static/")


@dataclass(frozen=True)
class Principal:
    """Who made the request: a bearer-token client, or a browser with a login session (its id)."""

    session_id: str | None = None

    @property
    def is_bearer(self) -> bool:
        return self.session_id is None


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def public(path: str) -> bool:
    return path == PUBLIC[0] or path.startswith(PUBLIC[1])


def wants_html(headers: Headers) -> bool:
    """Whether the client is a browser asking for a page (else it gets JSON)."""
    accept = headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


class RequireLogin:
    """Lets a request through with a valid bearer token or an open session (as scope state "principal"); else a
    browser is sent to the login form and any other client gets 401.

    Wrong bearer tokens count as failed logins in `throttle` (the login form's, per client address): while an
    address is blocked, its bearer requests get 429 with Retry-After, right token or not.
    """

    def __init__(
        self, app: ASGIApp, *, token: str, key: bytes, sessions: Sessions, throttle: LoginThrottle | None = None
    ) -> None:
        self.app = app
        self._token = token
        self._key = key
        self._sessions = sessions
        self._throttle = throttle or LoginThrottle()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal, refusal = await self._principal(request)
        if principal is None:
            await (refusal or self._refuse(request))(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    async def _principal(self, request: Request) -> tuple[Principal | None, Response | None]:
        header = request.headers.get("authorization")
        if header is not None:
            client = request.client.host if request.client else "-"
            now = time.monotonic()
            wait_s = self._throttle.blocked_for(client, now)
            if wait_s > 0:
                return None, _too_many(wait_s)
            given = bearer(header)
            if given is not None and token_matches(given, self._token):
                self._throttle.succeeded(client)
                return Principal(), None
            self._throttle.failed(client, now)
            return None, _unauthorised("the Authorization header is not `Bearer <CONSOLE_TOKEN>`")
        session_id = session_of(self._key, request.cookies.get(SESSION_COOKIE), time.time())
        if session_id is None:
            return None, None
        try:
            is_open = await self._sessions.is_open(session_id)
        except RedisError as exc:
            detail = f"Redis is unavailable: {type(exc).__name__}; try again in a moment"
            return None, JSONResponse({"error": detail}, status_code=503)
        return (Principal(session_id), None) if is_open else (None, None)

    def _refuse(self, request: Request) -> Response:
        if request.method == "GET" and wants_html(request.headers):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return _unauthorised("log in at /login, or send `Authorization: Bearer <CONSOLE_TOKEN>`")


def _unauthorised(message: str) -> Response:
    return JSONResponse({"error": message}, status_code=401, headers={"www-authenticate": 'Bearer realm="crmflow"'})


def _too_many(wait_s: float) -> Response:
    seconds = max(1, math.ceil(wait_s))
    message = f"too many wrong tokens from this address: try again in {seconds} s"
    return JSONResponse({"error": message}, status_code=429, headers={"retry-after": str(seconds)})
