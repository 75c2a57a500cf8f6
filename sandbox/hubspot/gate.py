"""ASGI gate in front of the HubSpot routes: bearer-token check, rate limits, and the rate-limit headers.

Search requests (POST .../search) are exempt from the ten-secondly limit and have their own: at most
`hubspot_search_per_s` a second per account, refused with a 429 "secondly limit" body; their answers carry
no rate-limit headers, as HubSpot's search answers do not (docs/hubspot.md, "Search"). They still count
against the daily limit.

Order: authentication first (401 INVALID_AUTHENTICATION, without rate-limit headers: an unauthenticated
request belongs to no app, so it neither counts nor is told about any app's limits), then the limiter (429
with the DAILY or TEN_SECONDLY_ROLLING body), then the scopes the call needs (403 MISSING_SCOPES when the
sandbox was told to grant fewer: sandbox.hubspot.scopes), then the route. Every authenticated answer, errors included,
carries the X-HubSpot-RateLimit-* headers computed after counting the request. Search requests (paths
ending in /search, whatever the object) pass the search API's own limit instead (429 with the secondly
body), and their answers carry no rate-limit headers (sandbox.hubspot.ratelimit).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.hubspot.errors import not_authenticated, rate_limit_body, secondly_limit_body
from sandbox.hubspot.http import error_answer, hubspot_response
from sandbox.hubspot.runtime import HubSpotRuntime
from sandbox.hubspot.scopes import call_missing_scopes, missing_scopes_error


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def add_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *raw]}
        await send(message)

    return add_headers


class HubSpotGate:
    """Wraps one HubSpot router."""

    def __init__(self, app: ASGIApp, hubspot: HubSpotRuntime) -> None:
        self.app = app
        self.hubspot = hubspot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.hubspot.authenticate(Headers(scope=scope).get("authorization")):
            await error_answer(not_authenticated())(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        missing = call_missing_scopes(str(scope.get("method")), path, self.hubspot.config.hubspot_scopes)
        if scope.get("method") == "POST" and path.rstrip("/").endswith("/search"):
            await self._search(scope, receive, send, missing)
            return
        decision = self.hubspot.limiter.admit(self.hubspot.now())
        if decision.refused is not None:
            body = rate_limit_body(decision.refused, self.hubspot.config.hubspot_portal_id)
            await hubspot_response(body, 429, decision.headers)(scope, receive, send)
            return
        if missing:
            await error_answer(missing_scopes_error(missing), decision.headers)(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send, decision.headers))

    async def _search(self, scope: Scope, receive: Receive, send: Send, missing: list[str]) -> None:
        now = self.hubspot.now()
        if not self.hubspot.search_limiter.admit(now):
            body = secondly_limit_body()
            await hubspot_response(body, 429)(scope, receive, send)
            return
        if self.hubspot.limiter.admit_daily(now) is not None:
            body = rate_limit_body("DAILY", self.hubspot.config.hubspot_portal_id)
            await hubspot_response(body, 429)(scope, receive, send)
            return
        if missing:
            await error_answer(missing_scopes_error(missing))(scope, receive, send)
            return
        await self.app(scope, receive, send)
