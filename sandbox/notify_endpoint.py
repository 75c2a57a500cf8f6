"""Notify endpoint: a local webhook receiver on loopback for notify actions, as the demo and the tests use it.

It accepts POSTs on any path, checks each one's Standard Webhooks signature when it has the secret, and keeps
what it received. By default it answers 200; `answer(path, ...)` scripts the next answers of a path (a status,
headers, a body, a delay, or a body that never ends), so a test can have it fail, redirect or stall. It runs
in a thread of its own (http.server), so synchronous and asynchronous code alike can use it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from workers.notify.signing import SignatureMismatchError, parse_secret, verify

# An endless answer stops after this much anyway, so a client that never stops reading cannot keep a thread.
ENDLESS_LIMIT_BYTES = 256 * 1024 * 1024
_CHUNK = b"x" * 65_536


@dataclass(frozen=True)
class Answer:
    """How the endpoint answers one POST."""

    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    # Wait this long before answering (the request is recorded at once).
    delay_s: float = 0.0
    # Send body bytes without end (up to ENDLESS_LIMIT_BYTES), until the client hangs up.
    endless: bool = False


@dataclass(frozen=True)
class Received:
    """One POST as it arrived, and whether its signature verified (None: the endpoint has no secret)."""

    path: str
    headers: Mapping[str, str]
    body: bytes
    verified: bool | None
    problem: str = ""

    def json(self) -> Any:
        return orjson.loads(self.body)


class NotifyEndpoint:
    """The receiver: `with NotifyEndpoint(secret) as endpoint:` serves on 127.0.0.1 at `endpoint.url`."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = parse_secret(secret, env_name="the endpoint's secret") if secret is not None else None
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._script: dict[str, deque[Answer]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> NotifyEndpoint:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> str:
        """Listen on a free loopback port; the base URL (append any path)."""
        server = _Server(("127.0.0.1", 0), _handler(self))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the notify endpoint is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, path: str, *answers: Answer) -> None:
        """Answer the next POSTs to `path` so, in order; after them, the default Answer()."""
        with self._lock:
            self._script.setdefault(path, deque()).extend(answers)

    def received(self, path: str | None = None) -> list[Received]:
        """What was POSTed (to `path` only, if given), oldest first."""
        with self._lock:
            return [r for r in self._received if path is None or r.path == path]

    def _next_answer(self, path: str) -> Answer:
        with self._lock:
            queued = self._script.get(path)
            return queued.popleft() if queued else Answer()

    def _keep(self, path: str, headers: Mapping[str, str], body: bytes) -> None:
        verified: bool | None = None
        problem = ""
        if self._key is not None:
            try:
                verify(self._key, body, headers, now_s=time.time())
                verified = True
            except SignatureMismatchError as exc:
                verified, problem = False, str(exc)
        with self._lock:
            self._received.append(Received(path, headers, body, verified, problem))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that hung up mid-request is no news here


def _handler(endpoint: NotifyEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, and an endless body ends where the connection does.
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            endpoint._keep(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            answer = endpoint._next_answer(self.path)
            if answer.delay_s:
                time.sleep(answer.delay_s)
            with contextlib.suppress(OSError):  # the client gave up (a timeout, a capped read): nothing to answer
                self._send(answer)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if not answer.endless:
                self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            for chunk in _chunks(answer):
                self.wfile.write(chunk)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            return None  # quiet: the demo prints what it received, tests read `received`

    return Handler


def _chunks(answer: Answer) -> Iterator[bytes]:
    if not answer.endless:
        yield answer.body
        return
    sent = 0
    while sent < ENDLESS_LIMIT_BYTES:
        yield _CHUNK
        sent += len(_CHUNK)
