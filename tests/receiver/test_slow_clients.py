"""Slow, stalled, truncated and huge bodies: answered within RECEIVER_BODY_TIMEOUT_S and in bounded memory, never
with a 5xx; in-process (raw ASGI, so the test decides when each piece arrives) and through a real uvicorn."""

from __future__ import annotations

import asyncio
import itertools
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from receiver.app import create_app
from receiver.config import ReceiverConfig
from tests.conftest import sample
from tests.receiver.serving import serving
from workers.contract import QUEUE_NAME

TOKEN = "zoho-TOKEN-slow-5a105e8b9d40e132"
DEADLINE_S = 0.3
BODY = orjson.dumps(sample("zoho/appointment_update") | {"token": TOKEN})
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]


def config(**overrides: Any) -> ReceiverConfig:
    return ReceiverConfig.model_validate(
        {"ZOHO_NOTIFY_TOKEN": TOKEN, "RECEIVER_BODY_TIMEOUT_S": DEADLINE_S, **overrides}
    )


async def call(app: Starlette, receive: Receive, length: int | None = len(BODY)) -> tuple[int, dict[str, str], Any]:
    """One POST /webhooks/zoho straight through the ASGI interface: status, headers and JSON body of the answer."""
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhooks/zoho",
        "raw_path": b"/webhooks/zoho",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("receiver", 80),
    }
    sent: list[Message] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    await app(scope, receive, send)
    start, body = sent[0], b"".join(message.get("body", b"") for message in sent[1:])
    headers_out = {name.decode(): value.decode() for name, value in start["headers"]}
    return start["status"], headers_out, orjson.loads(body)


def pieces(chunks: list[bytes], then: str) -> Receive:
    """A client that sends `chunks`, then stalls ("stall"), hangs up ("disconnect") or ends the body ("end")."""
    queue = list(chunks)

    async def receive() -> Message:
        if queue:
            return {"type": "http.request", "body": queue.pop(0), "more_body": True}
        if then == "stall":
            await asyncio.Event().wait()
        if then == "disconnect":
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


@pytest.fixture
async def app(redis: ArqRedis) -> Starlette:
    return create_app(config(), redis=redis)


async def test_a_stalled_body_is_408_within_the_deadline(app: Starlette, redis: ArqRedis) -> None:
    started = time.monotonic()

    status, headers, body = await call(app, pieces([BODY[:10]], "stall"))

    assert DEADLINE_S <= time.monotonic() - started < DEADLINE_S + 0.5
    assert status == 408
    assert body == {"error": "request_timeout", "detail": f"the body did not arrive within {DEADLINE_S:g} s"}
    assert headers["connection"] == "close"
    assert await redis.zcard(QUEUE_NAME) == 0


async def test_a_trickled_body_is_408_however_steady(app: Starlette, redis: ArqRedis) -> None:
    async def trickle() -> Message:
        await asyncio.sleep(0.02)  # one byte every 20 ms: never idle long, never finished in time
        return {"type": "http.request", "body": b" ", "more_body": True}

    started = time.monotonic()
    status, _, _ = await call(app, trickle, length=None)

    assert status == 408
    assert time.monotonic() - started < DEADLINE_S + 0.5
    assert await redis.zcard(QUEUE_NAME) == 0


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=len(BODY) - 1),
    splits=st.lists(st.integers(min_value=1, max_value=len(BODY)), max_size=4),
    then=st.sampled_from(["stall", "disconnect", "end"]),
)
async def test_a_body_cut_short_is_4xx_and_queues_nothing(
    redis: ArqRedis, cut: int, splits: list[int], then: str
) -> None:
    app = create_app(config(RECEIVER_BODY_TIMEOUT_S=0.05), redis=redis)
    prefix = BODY[:cut]
    bounds = sorted({0, *(split for split in splits if split < cut), cut})
    chunks = [prefix[start:end] for start, end in itertools.pairwise(bounds)]

    status, _, body = await call(app, pieces(chunks, then))

    expected = {"stall": (408, "request_timeout"), "disconnect": (400, "client_disconnected")}
    assert (status, body["error"]) == expected.get(then, (400, "malformed_request"))
    assert body["detail"]
    assert await redis.zcard(QUEUE_NAME) == 0


async def test_a_50_mb_stream_is_refused_after_about_the_cap(redis: ArqRedis) -> None:
    app = create_app(config(), redis=redis)
    chunk = b"x" * 65_536
    pulled = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(50 * 16):
            pulled += len(chunk)
            yield chunk

    tracemalloc.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
            streamed = await http.post(
                "/webhooks/zoho", content=fifty_megabytes(), headers={"content-type": "application/json"}
            )
            _, peak = tracemalloc.get_traced_memory()
            pulled_when_streamed, pulled = pulled, 0
            declared = await http.post(
                "/webhooks/zoho",
                content=fifty_megabytes(),
                headers={"content-type": "application/json", "content-length": str(50 * 1024 * 1024)},
            )
    finally:
        tracemalloc.stop()

    assert streamed.status_code == 413
    assert pulled_when_streamed <= 1_048_576 + len(chunk)  # the cap and the chunk that passed it, not 50 MB
    assert peak < 8 * 1_048_576
    assert declared.status_code == 413
    assert pulled == 0  # refused on the declared Content-Length, before reading anything
    assert await redis.zcard(QUEUE_NAME) == 0


# --- through uvicorn, with the connection layer of `crmflow receiver` (tests/receiver/serving.py) -------------------


def head(length: int) -> bytes:
    return (
        b"POST /webhooks/zoho HTTP/1.1\r\nhost: receiver\r\ncontent-type: application/json\r\n"
        + f"content-length: {length}\r\n\r\n".encode()
    )


async def answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """The status line and the rest, read until the server closes the connection (bounded by the test's timeout)."""
    data = await asyncio.wait_for(reader.read(), timeout=5)
    status, _, rest = data.partition(b"\r\n")
    return status, rest


async def test_uvicorn_a_stalled_body_gets_408_and_the_connection_is_closed(app: Starlette) -> None:
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head(len(BODY)) + BODY[:20])
        await writer.drain()
        started = time.monotonic()

        status, rest = await answer(reader)  # returns only once the server has closed the connection
        writer.close()

    assert status == b"HTTP/1.1 408 Request Timeout"
    assert b"request_timeout" in rest
    assert time.monotonic() - started < DEADLINE_S + 1


async def test_uvicorn_a_50_mb_declared_body_is_413_without_being_read(app: Starlette) -> None:
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(head(50 * 1024 * 1024))
        await writer.drain()

        status, rest = await answer(reader)
        writer.close()

    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"payload_too_large" in rest


async def test_uvicorn_a_client_hanging_up_mid_body_causes_no_error(
    app: Starlette, redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(app) as port:
        for _ in range(3):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head(len(BODY)) + BODY[:30])
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            after = await http.post("/webhooks/zoho", content=BODY, headers={"content-type": "application/json"})

    assert after.status_code == 200  # the server is unharmed
    assert [record for record in caplog.records if record.levelname in {"ERROR", "CRITICAL"}] == []
    assert await redis.zcard(QUEUE_NAME) == 1
