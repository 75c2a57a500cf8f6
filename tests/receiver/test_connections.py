"""The connection layer (receiver/server.py) on real sockets, through a real uvicorn in the test's event loop:
header deadline, idle keep-alive, socket cap, request limit, JSON refusals, and the uvicorn internals it relies on.

The same against a real `crmflow receiver` process, with 300 idle connections: test_idle_connections.py.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import h11
import orjson
import pytest
import uvicorn
from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol, RequestResponseCycle
from uvicorn.server import ServerState

from receiver.app import create_app
from receiver.config import ReceiverConfig
from receiver.server import (
    BODY_RECEIVED,
    ReceiverProtocol,
    RequestLimit,
    protocol_for,
    raise_file_limit,
    server_options,
)
from tests.conftest import sample
from tests.receiver.serving import serving
from workers.contract import QUEUE_NAME

TOKEN = "zoho-TOKEN-conn-8f14e45fceea167a"
DEADLINE_S = 0.5
BODY = orjson.dumps(sample("zoho/appointment_update") | {"token": TOKEN})


def config(**overrides: Any) -> ReceiverConfig:
    settings = {"ZOHO_NOTIFY_TOKEN": TOKEN, "RECEIVER_HEADER_TIMEOUT_S": DEADLINE_S, "RECEIVER_BODY_TIMEOUT_S": 5}
    return ReceiverConfig.model_validate(settings | overrides)


@pytest.fixture
async def app(redis: ArqRedis) -> Starlette:
    return create_app(config(), redis=redis)


class Client:
    """One raw, non-blocking socket: what is written is exactly what the server gets, and what the server sent
    before a reset is kept (asyncio's streams drop it when the reset comes first)."""

    opened: ClassVar[list[Client]] = []

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, port: int) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        client = cls(sock)
        cls.opened.append(client)
        await client.loop.sock_connect(sock, ("127.0.0.1", port))
        return client

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def _more(self) -> bool:
        """Read what the server sends next into the buffer; False at the end of file or a reset."""
        try:
            data = await asyncio.wait_for(self.loop.sock_recv(self.sock, 65536), 5)
        except ConnectionResetError:
            return False
        self.buffer += data
        return bool(data)

    async def until_closed(self) -> bytes:
        """Everything the server sends until it closes the connection (or resets it)."""
        while await self._more():
            pass
        data, self.buffer = self.buffer, b""
        return data

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """One response on a keep-alive connection: status, headers, body (by its Content-Length)."""
        while b"\r\n\r\n" not in self.buffer:
            assert await self._more(), f"closed after {self.buffer!r}"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status, headers = parse_head(head)
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert await self._more(), f"closed after {self.buffer!r}"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while Client.opened:
        Client.opened.pop().close()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    return int(lines[0].split(" ")[1]), headers


def parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status, headers = parse_head(head)
    return status, headers, orjson.loads(body)


def get(path: str, *extra: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", "host: receiver", *extra, "", ""]).encode()


def post_head(length: int = len(BODY)) -> bytes:
    return (
        b"POST /webhooks/zoho HTTP/1.1\r\nhost: receiver\r\ncontent-type: application/json\r\n"
        + f"content-length: {length}\r\n\r\n".encode()
    )


def assert_json_refusal(raw: bytes, status: int, error: str) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == status, raw
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert set(body) == {"error", "detail"} and body["error"] == error and body["detail"], body
    return headers


# --- the header deadline ------------------------------------------------------------------------------------------


async def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(app: Starlette) -> None:
    async with serving(app) as port:
        client = await Client.connect(port)
        started = time.monotonic()

        got = await client.until_closed()

    assert got == b""  # nothing to answer: no request was begun
    assert DEADLINE_S - 0.05 <= time.monotonic() - started < DEADLINE_S + 1


async def test_a_head_trickled_a_byte_at_a_time_gets_a_json_408_at_the_deadline(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(app) as port:
        client = await Client.connect(port)
        started = time.monotonic()

        async def trickle() -> None:
            # Never idle for long, never done in time; it stops short of the deadline, since bytes arriving after
            # the server has closed would make its kernel answer with a reset.
            for byte in post_head():
                if time.monotonic() - started > DEADLINE_S * 0.6:
                    break
                await client.send(bytes([byte]))
                await asyncio.sleep(0.02)

        sender = asyncio.create_task(trickle())
        got = await client.until_closed()
        sender.cancel()

    assert DEADLINE_S - 0.05 <= time.monotonic() - started < DEADLINE_S + 1
    assert_json_refusal(got, 408, "request_timeout")
    assert parse(got)[2]["detail"] == f"the request head did not arrive within {DEADLINE_S:g} s"
    assert "no complete request head within 0.5 s: 408" in caplog.text


async def test_on_keep_alive_each_later_head_has_its_own_deadline(app: Starlette) -> None:
    async with serving(app) as port:
        client = await Client.connect(port)
        for gap in [0, 1.5 * DEADLINE_S, 1.5 * DEADLINE_S]:  # idle between requests: keep-alive's (5 s), not this
            await asyncio.sleep(gap)
            await client.send(get("/healthz"))
            assert (await client.response())[0] == 200
        await client.send(b"GET /healthz HTTP/1.1\r\nhost: rec")  # the next head, begun and left unfinished
        started = time.monotonic()

        got = await client.until_closed()

    assert_json_refusal(got, 408, "request_timeout")
    assert time.monotonic() - started < DEADLINE_S + 1


async def test_a_head_begun_in_the_same_read_as_the_last_body_has_a_deadline_too(app: Starlette) -> None:
    # Found in review: the app answers a 404 without reading the body; the rest of that body and the start of
    # the next head then arrive in one segment, and that head was never timed: the socket stayed open forever.
    async with serving(app) as port:
        client = await Client.connect(port)
        await client.send(b"POST /nope HTTP/1.1\r\nhost: receiver\r\ncontent-length: 5\r\n\r\n")
        assert (await client.response())[0] == 404
        await client.send(b"12345G")
        started = time.monotonic()

        got = await client.until_closed()

    assert_json_refusal(got, 408, "request_timeout")
    assert time.monotonic() - started < DEADLINE_S + 1


async def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(redis: ArqRedis) -> None:
    app = create_app(config(RECEIVER_HEADER_TIMEOUT_S=5), redis=redis)
    async with serving(app, timeout_keep_alive=1) as port:
        client = await Client.connect(port)
        await client.send(get("/healthz"))
        assert (await client.response())[0] == 200
        started = time.monotonic()

        got = await client.until_closed()

    assert got == b""
    assert 0.9 <= time.monotonic() - started < 3


def test_the_keep_alive_timeout_is_still_5_s() -> None:
    assert server_options(config())["timeout_keep_alive"] == 5


async def test_a_slow_body_is_not_cut_by_the_header_deadline(app: Starlette, redis: ArqRedis) -> None:
    # The head is done in time; the body has RECEIVER_BODY_TIMEOUT_S (5 s here), well past the header deadline.
    async with serving(app) as port:
        client = await Client.connect(port)
        await client.send(post_head())
        for start in range(0, len(BODY), len(BODY) // 4 + 1):
            await asyncio.sleep(DEADLINE_S / 2)
            await client.send(BODY[start : start + len(BODY) // 4 + 1])

        status, _, body = await client.response()
        client.close()

    assert status == 200, body
    assert await redis.zcard(QUEUE_NAME) == 1


# --- the socket cap -----------------------------------------------------------------------------------------------


async def test_beyond_the_socket_cap_a_connection_gets_a_json_503_and_is_closed(
    redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(config(RECEIVER_MAX_CONNECTIONS=5, RECEIVER_HEADER_TIMEOUT_S=5), redis=redis)
    async with serving(app) as port:
        held = [await Client.connect(port) for _ in range(5)]
        for client in held:  # each one accepted and counted by the server, then idle on keep-alive
            await client.send(get("/healthz"))
            assert (await client.response())[0] == 200

        refused = [await (await Client.connect(port)).until_closed() for _ in range(2)]

        held.pop().close()
        for _ in range(100):  # until the server has seen that one close
            again = await Client.connect(port)
            await again.send(get("/healthz", "connection: close"))
            last = await again.until_closed()
            if parse(last)[0] == 200:
                break
            await asyncio.sleep(0.02)
        for client in held:
            client.close()

    for raw in refused:
        headers = assert_json_refusal(raw, 503, "overloaded")
        assert headers["retry-after"] == "1"
    assert parse(last)[0] == 200
    assert "5 connections open, the cap (RECEIVER_MAX_CONNECTIONS)" in caplog.text
    assert re.search(r"below the connection cap again; \d+ connections were refused", caplog.text)


# --- the request limit --------------------------------------------------------------------------------------------


async def test_beyond_the_request_limit_a_request_gets_a_json_503_at_once(app: Starlette, redis: ArqRedis) -> None:
    app = create_app(config(RECEIVER_MAX_REQUESTS=2), redis=redis)
    async with serving(app) as port:
        busy = [await Client.connect(port) for _ in range(2)]
        for client in busy:  # in the app, waiting for the rest of their bodies
            await client.send(post_head() + BODY[:10])
        await asyncio.sleep(0.1)

        extra = await Client.connect(port)
        started = time.monotonic()
        await extra.send(post_head() + BODY)
        refused = await extra.until_closed()
        refused_in = time.monotonic() - started
        health = await Client.connect(port)
        await health.send(get("/healthz") + get("/readyz", "connection: close"))
        probes = await health.until_closed()

        for client in busy:
            await client.send(BODY[10:])
        finished = [await client.response() for client in busy]
        after = await Client.connect(port)
        await after.send(post_head() + BODY)
        status_after = (await after.response())[0]
        for client in [*busy, after]:
            client.close()

    headers = assert_json_refusal(refused, 503, "overloaded")
    assert headers["retry-after"] == "1"
    assert parse(refused)[2]["detail"] == "more than 2 requests at once; retry later"
    assert refused_in < 2  # not after a slot came free: the busy ones would wait 5 s for their bodies
    assert probes.count(b"HTTP/1.1 200 OK") == 2  # the health checks are never refused for load
    assert [status for status, _, _ in finished] == [200, 200]
    assert status_after == 200


async def test_the_request_limit_counts_requests_not_connections() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.disconnect"}

    limit = RequestLimit(inner, max_requests=1)
    for path in ["/webhooks/zoho", "/webhooks/zoho", "/healthz"]:
        await limit({"type": "http", "path": path}, receive, send)

    assert seen == ["/webhooks/zoho", "/webhooks/zoho", "/healthz"]  # one at a time: never over the limit
    assert limit.in_flight == 0


# --- refusals of the connection layer are JSON --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "status", "error"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed_request"),
        (b"GET / HTTP/1.1\r\nhost: receiver\r\nno colon here\r\n\r\n", 400, "malformed_request"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "malformed_request"),  # no Host
        (b"POST / HTTP/1.1\r\nhost: r\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", 400, "malformed_request"),
        (b"GET / HTTP/1.1\r\nhost: receiver\r\nx-pad: " + b"a" * 17_000, 431, "headers_too_large"),
        (b"POST /webhooks/zoho HTTP/1.1\r\nhost: r\r\ntransfer-encoding: gzip\r\n\r\n", 400, "malformed_request"),
    ],
    ids=["request-line", "header-line", "no-host", "two-lengths", "head-over-16-KiB", "transfer-encoding"],
)
async def test_what_the_connection_layer_refuses_is_answered_in_json(
    app: Starlette, sent: bytes, status: int, error: str
) -> None:
    async with serving(app) as port:
        client = await Client.connect(port)
        await client.send(sent)

        got = await client.until_closed()

    assert_json_refusal(got, status, error)


async def test_a_complete_head_over_16_kib_is_refused_too(app: Starlette) -> None:
    # h11 lets a complete head of any size through when it arrives at once; the webhook routes then refuse it.
    async with serving(app) as port:
        client = await Client.connect(port)
        await client.send(post_head()[:-2] + b"x-pad: " + b"a" * 17_000 + b"\r\n\r\n" + BODY)

        status, _, body = await client.response()
        client.close()

    assert (status, orjson.loads(body)["error"]) == (431, "headers_too_large")


# --- settings, file limit, and the uvicorn internals the layer relies on ------------------------------------------


def test_settings_and_their_defaults() -> None:
    defaults = ReceiverConfig.model_validate({"ZOHO_NOTIFY_TOKEN": TOKEN})
    assert (defaults.header_timeout_s, defaults.max_requests, defaults.max_connections) == (10.0, 200, 1000)
    options = server_options(defaults)
    assert options["limit_concurrency"] is None  # uvicorn's limit counts idle sockets: not used
    assert issubclass(options["http"], ReceiverProtocol)
    assert (options["http"].header_timeout_s, options["http"].max_connections) == (10.0, 1000)
    assert options["h11_max_incomplete_event_size"] == 16 * 1024


def test_the_file_limit_is_raised_to_fit_the_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"soft": 256, "hard": 4096}
    monkeypatch.setattr(resource, "getrlimit", lambda _: (limits["soft"], limits["hard"]))
    monkeypatch.setattr(resource, "setrlimit", lambda _, value: limits.update(soft=value[0]))

    assert raise_file_limit(config(RECEIVER_MAX_CONNECTIONS=1000, RECEIVER_MAX_REQUESTS=200)) == 1264
    assert limits["soft"] == 1264
    with pytest.raises(ValueError, match="RECEIVER_MAX_CONNECTIONS: 5000 connections need 5264 open files"):
        raise_file_limit(config(RECEIVER_MAX_CONNECTIONS=5000, RECEIVER_MAX_REQUESTS=200))


async def test_uvicorn_internals_this_module_relies_on(app: Starlette) -> None:
    """receiver/server.py subclasses uvicorn's H11Protocol: if an upgrade moves what it relies on, fail here."""
    for name in ["connection_made", "connection_lost", "data_received", "handle_events", "send_400_response"]:
        assert callable(getattr(H11Protocol, name, None)), name
    for name in ["on_response_complete", "shutdown", "timeout_keep_alive_handler"]:
        assert callable(getattr(H11Protocol, name, None)), name
    assert list(inspect.signature(H11Protocol.__init__).parameters)[:4] == [
        "self",
        "config",
        "server_state",
        "app_state",
    ]
    # uvicorn's Config takes a protocol class for `http=`, and handle_events hands h11's errors to send_400_response.
    protocol_class = protocol_for(config())
    loaded = uvicorn.Config(app, **(server_options(config()) | {"http": protocol_class}))
    loaded.load()
    assert loaded.http_protocol_class is protocol_class
    assert "send_400_response" in inspect.getsource(H11Protocol.handle_events)
    assert "RemoteProtocolError" in inspect.getsource(H11Protocol.handle_events)
    # The attributes the subclass reads and replaces, on a real instance.
    protocol = protocol_class(config=loaded, server_state=ServerState(), app_state={})
    assert protocol.conn is protocol.h11 and isinstance(protocol.conn, h11.Connection)
    assert protocol.connections is not None and protocol.loop is asyncio.get_running_loop()
    assert protocol.server_state.default_headers == []
    assert hasattr(protocol, "transport") and hasattr(protocol, "client") and protocol.cycle is None
    # The connection layer reads the request's cycle: its scope, and whether more of its body is to come.
    cycle_source = inspect.getsource(RequestResponseCycle.__init__)
    assert "self.scope = scope" in cycle_source and "self.more_body = True" in cycle_source


def test_the_garbage_collector_is_settled_off_the_request_path() -> None:
    # In a process of its own: freezing would keep the test session's objects forever.
    script = (
        "import gc\n"
        "from receiver.server import GC_YOUNG_THRESHOLD, settle_garbage_collector\n"
        "middle, old = gc.get_threshold()[1:]\n"
        "settle_garbage_collector()\n"
        "assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old), gc.get_threshold()\n"
        "assert gc.get_freeze_count() > 1000 and gc.get_count()[0] < 100, (gc.get_freeze_count(), gc.get_count())\n"
        "cycle = []\n"
        "cycle.append(cycle)\n"
        "del cycle\n"
        "assert gc.collect() == 1  # cycles are still collected\n"
    )
    subprocess.run([sys.executable, "-c", script], timeout=30, check=True)


async def test_the_app_is_told_when_the_whole_body_came_before_it_reads_it() -> None:
    async def echo(request: Request) -> Response:
        received = BODY_RECEIVED in (request.scope.get("extensions") or {})
        return Response(orjson.dumps({"received": received, "length": len(await request.body())}))

    app = Starlette(routes=[Route("/webhooks/zoho", echo, methods=["POST"])])
    app.state.crmflow = SimpleNamespace(config=config())
    async with serving(app) as port:
        client = await Client.connect(port)
        await client.send(post_head() + BODY)  # head and body in one read
        at_once = await client.response()
        await client.send(post_head())  # the body later: the app may have to wait for it
        await asyncio.sleep(0.2)
        await client.send(BODY)
        later = await client.response()

    assert orjson.loads(at_once[2]) == {"received": True, "length": len(BODY)}
    assert orjson.loads(later[2]) == {"received": False, "length": len(BODY)}
