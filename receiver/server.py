"""Server: the HTTP/1.1 connection layer under the receiver's app, and the request limit in front of it.

uvicorn (0.54, h11) as configured until now let anyone stop the receiver with 200 idle TCP connections: its
`limit_concurrency` counts open connections, idle or not, a connection that never sends a byte is never timed
out, and every route then answered a plain-text 503. This module keeps uvicorn and gives it:

* **a header deadline**: a connection that has not sent a complete request head within
  RECEIVER_HEADER_TIMEOUT_S of opening is closed; silently if it sent nothing, with a JSON 408 if it sent part
  of a head. On a keep-alive connection the deadline starts again at the first byte of each later request
  (until that byte, uvicorn's keep-alive timeout closes an idle connection, as before);
* **a socket cap**: beyond RECEIVER_MAX_CONNECTIONS open sockets, a new connection gets a JSON 503 and is
  closed. The cap is well above the request limit, and idle sockets are closed by the deadline, so idle
  connections never make a valid request wait or fail while the cap is not reached;
* **JSON refusals**: what the connection layer refuses (400 not HTTP/1.1, 431 head over 16 KiB, 408, 503) is
  answered `{"error": code, "detail": text}` like the app's own. As in the app, what the client sent gets a 4xx:
  a Transfer-Encoding other than chunked is a 400 (h11 hints 501, which a sender would take as "retry");
* **a request limit** (`RequestLimit`, an ASGI middleware wired in receiver/app.py): at most
  RECEIVER_MAX_REQUESTS requests in the app at once, which bounds memory to about that many bodies of at most
  the body cap, plus two large ones being parsed (receiver/routes.py, about 60 MiB each at the cap); more get a
  JSON 503 with Retry-After at once. /healthz, /readyz and /metrics are not counted: they read no body,
  and an orchestrator must not take a busy receiver for a dead one. uvicorn's `limit_concurrency` is off.

Why this and not another server. hypercorn 0.18 closes a connection that has not sent a complete head within
its keep-alive timeout, but has no socket cap and no request limit, answers its refusals with empty bodies,
and would be a new dependency tree; its `read_timeout` is per read, so a head trickled a byte at a time passes.
granian has hyper's header read timeout and a backpressure limit, but its refusals are written by hyper in
Rust, out of Python's reach, and it changes how the process runs and is tested. Either would still need a
proxy for TLS. Subclassing uvicorn's H11Protocol costs one small module; its price is reliance on uvicorn
internals (the protocol's constructor, its `conn`, `transport`, `connections`, `server_state`, `loop` and
`cycle` (its `scope` and `more_body`), the
methods overridden here, `handle_events` handing h11's errors to `send_400_response`, and Config's `http=`
class hook), pinned by tests/receiver/test_connections.py::test_uvicorn_internals_this_module_relies_on and
exercised on real sockets by the rest of that module, so an upgrade that breaks them fails loudly.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import h11
import orjson
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from receiver.config import ReceiverConfig
from receiver.receive import MAX_HEADER_BYTES
from workers.metrics import count_rejection

logger = logging.getLogger("crmflow.receiver")

# An idle keep-alive connection is closed after this many seconds (uvicorn's timeout_keep_alive). A proxy
# in front must drop its idle upstream connections sooner (deploy/Caddyfile: 4 s).
KEEP_ALIVE_S = 5
# On a stop, answers in flight get this many seconds.
GRACEFUL_SHUTDOWN_S = 10
# Answered 503s say to retry after this many seconds.
RETRY_AFTER_S = 1
# File descriptors besides the client sockets: the listening socket, Redis connections (up to one per request
# in flight), logs, the event loop's own.
_SPARE_FDS = 64
# Codes of the connection layer's refusals, in the app's vocabulary where it has one (receiver/errors.py).
_CODES = {
    400: "malformed_request",
    408: "request_timeout",
    431: "headers_too_large",
    503: "overloaded",
}
# Not counted against the request limit: they read no body (and a busy receiver must stay observable).
_HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# An ASGI scope extension the connection layer sets when a request's whole body has been received before the
# app reads it (nearly every webhook: body and head come in one read): reading it cannot wait, so the app arms
# no body deadline (receiver/receive.py `read_capped`).
BODY_RECEIVED = "crmflow.body_received"


def refusal(status: int, detail: str) -> bytes:
    """The JSON body of a refusal, in the app's shape."""
    code = _CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return orjson.dumps({"error": code, "detail": detail})


class _Connection(h11.Connection):
    """h11's connection, keeping the protocol error that uvicorn's handle_events catches and drops."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise


@dataclass
class _Refusals:
    """Connections refused since the cap was reached, shared by one server's connections (for two log lines)."""

    count: int = 0


class ReceiverProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a socket cap and JSON refusals (see the module docstring).

    Configured by subclassing: `protocol_for(config)`. uvicorn makes one instance per connection.
    """

    header_timeout_s: ClassVar[float] = 10.0
    max_connections: ClassVar[int] = 1000
    refused: ClassVar[_Refusals] = _Refusals()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or MAX_HEADER_BYTES
        self.h11 = _Connection(h11.SERVER, self.max_head_bytes)
        self.conn = self.h11  # before uvicorn uses it: nothing has been received yet
        self._header_deadline: asyncio.TimerHandle | None = None

    # --- the socket cap and the header deadline -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            if self.refused.count == 0:
                logger.warning(
                    "%d connections open, the cap (RECEIVER_MAX_CONNECTIONS): refusing new ones with 503",
                    self.max_connections,
                )
            self.refused.count += 1
            self._refuse(503, f"more than {self.max_connections} connections are open; retry later", retry=True)
            return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)
        if self.refused.count and len(self.connections) < self.max_connections:
            logger.warning("below the connection cap again; %d connections were refused", self.refused.count)
            self.refused.count = 0

    def shutdown(self) -> None:
        if not self.transport.is_closing():  # a refused connection is closing already
            super().shutdown()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():  # refused, or timed out: nothing more is read
            return
        # The first bytes of a later request on a keep-alive connection: its head gets a deadline of its own.
        # (uvicorn's keep-alive timer, which closed the idle connection until now, stops on any byte received.)
        if self._header_deadline is None and self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and not cycle.more_body:  # its body is all in (uvicorn's receive() answers at once)
            extensions = cycle.scope.get("extensions")
            if extensions is None:
                cycle.scope["extensions"] = extensions = {}
            extensions[BODY_RECEIVED] = {}
        if self.conn.their_state is not h11.IDLE:  # a complete head was received (or the connection failed)
            self._disarm_header_deadline()
        elif self.conn.trailing_data[0] and self._header_deadline is None and not self.transport.is_closing():
            # Part of the next request's head came in the same read as the end of the last one (whose answer
            # may have left its body unread): that head gets its deadline too, or the socket stayed forever.
            self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._header_timed_out)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _header_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if not self.conn.trailing_data[0]:
            # Not a byte of a request: nobody to answer (as Apache does; a 408 here confuses clients that
            # opened the connection ahead of use).
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()
            return
        logger.warning("%sno complete request head within %g s: 408, closed", self._peer(), self.header_timeout_s)
        self._refuse(408, f"the request head did not arrive within {self.header_timeout_s:g} s")

    # --- refusals -------------------------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this when h11 cannot parse the request: answer a JSON 431 for a head over the cap, else 400."""
        error = self.h11.error
        status = 431 if error is not None and error.error_status_hint == 431 else 400
        if status == 431:
            detail = f"the request head is over {self.max_head_bytes} bytes"
        else:
            reason = str(error) if error is not None else msg
            detail = f"not a valid HTTP/1.1 request: {reason[:100]}"
        logger.warning("%sinvalid request refused: %d %s", self._peer(), status, detail)
        self._refuse(status, detail)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]} - " if self.client else ""

    def _refuse(self, status: int, detail: str, *, retry: bool = False) -> None:
        """Answer `status` with a JSON body, then close the connection (nothing more is read from it)."""
        self._disarm_header_deadline()
        body = refusal(status, detail)
        headers = [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        if retry:
            headers.append((b"retry-after", str(RETRY_AFTER_S).encode()))
        try:
            reason = HTTPStatus(status).phrase.encode()
            output = self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
            output += self.conn.send(h11.Data(data=body)) or b""
            output += self.conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            output = None  # a response had already begun on this connection: only closing is left
        if output:
            self.transport.write(output)
        self.transport.close()


def protocol_for(config: ReceiverConfig) -> type[ReceiverProtocol]:
    """A ReceiverProtocol class with `config`'s header deadline and socket cap, for uvicorn's `http=`."""

    class Configured(ReceiverProtocol):
        header_timeout_s = config.header_timeout_s
        max_connections = config.max_connections
        refused = _Refusals()

    return Configured


def server_options(config: ReceiverConfig) -> dict[str, Any]:
    """uvicorn's options for the receiver (for `uvicorn.run` and `uvicorn.Config`), besides app, host and port."""
    return {
        "http": protocol_for(config),
        # h11 caps the request head at 16 KiB (431): httptools, if installed, would not.
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
        # Requests are limited by RequestLimit, sockets by the protocol: uvicorn's limit counts idle sockets.
        "limit_concurrency": None,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "server_header": False,
        # No access log: the receiver logs its own line per webhook (what was queued, or why it was refused),
        # and uvicorn's would repeat it, costing a log record per request.
        "access_log": False,
    }


def raise_file_limit(config: ReceiverConfig) -> int:
    """Raise the process's soft limit on open files to fit RECEIVER_MAX_CONNECTIONS sockets; return the limit.

    Past the limit, accept() fails and uvicorn stops accepting for a while: every client would wait, which
    is what the cap is for. Raises ValueError when even the hard limit is too low.
    """
    needed = config.max_connections + config.max_requests + _SPARE_FDS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ValueError(
            f"RECEIVER_MAX_CONNECTIONS: {config.max_connections} connections need {needed} open files, but this "
            f"process may open at most {hard} (ulimit -Hn); lower it or raise the limit"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed


# Tracked objects allocated (net of those freed) before the collector's youngest generation is scanned.
# Python's default is 700, which the objects of the requests in flight (over a hundred each) pass every few
# requests. Not much higher: a request answered 503 (Redis away) leaves a reference cycle through its error's
# traceback that holds its body until collected, so a far higher threshold lets a Redis outage pile bodies up.
GC_YOUNG_THRESHOLD = 2_000


def settle_garbage_collector() -> None:
    """Keep Python's cyclic garbage collector's cost off the request path; call once, after start-up.

    Nearly everything a webhook allocates is freed by reference counting when it is answered. But the
    collector counts allocations, not garbage: with the default threshold, the requests in flight set off a
    young collection every few requests and a full one (every object of every imported module, tens of
    milliseconds) every thousand or so. Start-up's objects are frozen (never scanned again, so a full
    collection is short) and the young generation is collected after GC_YOUNG_THRESHOLD allocations. Cycles
    (a failed request's traceback) are still collected, soon.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class RequestLimit:
    """At most `max_requests` requests in the app at once; more get a JSON 503 with Retry-After, at once.

    The health checks are not counted and never refused for load. The 503 closes the connection: the body it
    leaves unread is not worth draining on a server this busy.
    """

    def __init__(self, app: ASGIApp, max_requests: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_requests:
            count_rejection(scope["path"], "overloaded")
            await self._refuse(send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            if self.refused and self.in_flight < self.max_requests:
                logger.warning("below the request limit again; %d requests were refused", self.refused)
                self.refused = 0

    async def _refuse(self, send: Send) -> None:
        if self.refused == 0:
            logger.warning(
                "%d requests in flight, the limit (RECEIVER_MAX_REQUESTS): refusing more with 503", self.max_requests
            )
        self.refused += 1
        body = refusal(503, f"more than {self.max_requests} requests at once; retry later")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_S).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
