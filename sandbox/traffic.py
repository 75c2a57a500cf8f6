"""ASGI middleware on the CRM paths (/crm/ for Zoho and HubSpot, /oauth/): Zoho's concurrency cap, the fault plan,
the request log."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.faults import FaultDecision, applies_to, fault_answer
from sandbox.hubspot.paths import is_hubspot_path
from sandbox.runtime import SandboxRuntime


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the already-read body to the app once, then defer to the server (disconnects)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _run(app: ASGIApp, scope: Scope, receive: Receive, send: Send | None) -> int:
    """Run the app, forwarding its answer to `send` (or dropping it), and return the status it sent."""
    status = 500

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        if send is not None:
            await send(message)

    await app(scope, receive, capture)
    return status


def _logged_body(path: str, method: str, body: bytes) -> Any:
    if not path.startswith("/crm/") or method in ("GET", "HEAD") or not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def _is_zoho_api(path: str) -> bool:
    return path.startswith("/crm/") and not is_hubspot_path(path)


class TrafficMiddleware:
    """Zoho's concurrency cap first (a 429 at once), then faults (delay, then error or lost answer), then the
    request log entry. A call holds its place under the cap until it is answered, its fault delay included."""

    def __init__(self, app: ASGIApp, runtime: SandboxRuntime) -> None:
        self.app = app
        self.runtime = runtime
        self.zoho_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        cap = self.runtime.config.zoho_max_concurrency
        if cap is None or not _is_zoho_api(scope["path"]):
            await self._serve(scope, body, receive, send)
            return
        if self.zoho_in_flight >= cap:
            content, media_type = fault_answer(429, None)  # Zoho's TOO_MANY_REQUESTS
            await Response(content, 429, media_type=media_type)(scope, receive, send)
            self._log(scope, body, 429, None)
            return
        self.zoho_in_flight += 1
        served = False

        def done() -> None:
            nonlocal served
            if not served:
                served = True
                self.zoho_in_flight -= 1

        async def answer(message: Message) -> None:
            # The call ends when its answer is complete: free its place before the client can see it.
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done()
            await send(message)

        try:
            await self._serve(scope, body, receive, answer)
        finally:
            done()

    async def _serve(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        decision = self.runtime.faults.decide(scope["method"], scope["path"])
        if decision is not None and decision.delay_ms:
            await asyncio.sleep(decision.delay_ms / 1000)
        status = await self._answer(scope, _replay(body, receive), send, decision)
        self._log(scope, body, status, decision)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, decision: FaultDecision | None) -> int:
        if decision is None or decision.status is None:
            return await _run(self.app, scope, receive, send)
        if decision.after:
            await _run(self.app, scope, receive, None)
        content, media_type, headers = self._fault(scope["path"], decision.status, decision)
        await Response(content, decision.status, headers, media_type)(scope, receive, send)
        return decision.status

    def _fault(self, path: str, status: int, decision: FaultDecision) -> tuple[bytes, str, dict[str, str]]:
        """The fault answer in the shape of the CRM the path belongs to (HubSpot's carries rate-limit headers)."""
        if is_hubspot_path(path):
            return self.runtime.hubspot.fault_answer(status, decision.body, decision.rate_limit_policy)
        content, media_type = fault_answer(status, decision.body)
        return content, media_type, {}

    def _log(self, scope: Scope, body: bytes, status: int, decision: FaultDecision | None) -> None:
        path: str = scope["path"]
        is_crm = path.startswith("/crm/")
        self.runtime.requests.record(
            {
                "method": scope["method"],
                "path": path,
                # OAuth parameters carry the client secret and refresh token: not logged.
                "query": scope["query_string"].decode("latin-1") if is_crm else "",
                "status": status,
                "fault_id": decision.rule_id if decision is not None else None,
                "body": _logged_body(path, scope["method"], body),
                "at": self.runtime.clock().isoformat(),
            }
        )
