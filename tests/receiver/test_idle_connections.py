"""Issue 8: 300 idle TCP connections against a real `crmflow receiver` process, on real sockets.

Until the connection layer (receiver/server.py), uvicorn's limit_concurrency=200 counted such connections, never
timed them out, and answered every request a plain-text 503 while they stayed open. Now /healthz and a valid
Zoho notification succeed while the idle sockets are held, and the server closes the idle sockets once
RECEIVER_HEADER_TIMEOUT_S has passed. This module imports nothing of the receiver, so it runs against any version.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from crmflow.embedded_redis import free_port
from tests.conftest import sample
from tests.processes import answers, crmflow_env, start, stop, wait_for
from workers.contract import QUEUE_NAME

pytestmark = pytest.mark.slow

TOKEN = "idle-connections-token-0c9f2d"
HEADER_TIMEOUT_S = 3.0
IDLE = 300


@pytest.fixture
def receiver(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, int, Path]]:
    """A `crmflow receiver` process with a 3 s header deadline: its URL, port and log."""
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = crmflow_env(REDIS_URL=redis_url, ZOHO_NOTIFY_TOKEN=TOKEN, RECEIVER_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S))
    log = tmp_path / "receiver.log"
    process = start(["receiver", "--port", str(port)], env, tmp_path, log)
    try:
        wait_for(lambda: answers(f"{url}/readyz"), "the receiver")
        yield url, port, log
    finally:
        stop(process)


def open_idle(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def still_open(sock: socket.socket) -> bool:
    """Whether the server has neither sent anything nor closed this socket (a non-blocking peek)."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False  # something was sent, or the end of file


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this socket: end of file or a reset, with nothing sent before it."""
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    assert data == b"", f"the server sent {data[:200]!r} to a connection that sent nothing"
    return True


def test_300_idle_connections_neither_block_nor_fail_valid_requests_and_are_closed(
    receiver: tuple[str, int, Path], redis_url: str
) -> None:
    url, port, log = receiver
    opened = time.monotonic()
    idle = open_idle(port, IDLE)
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            health = http.get("/healthz")
            notification = http.post(
                "/webhooks/zoho",
                content=orjson.dumps(sample("zoho/appointment_update") | {"token": TOKEN}),
                headers={"content-type": "application/json"},
            )
        answered = time.monotonic() - opened

        assert (health.status_code, health.headers["content-type"]) == (200, "application/json"), health.text
        assert health.json() == {"status": "ok"}
        assert notification.status_code == 200, notification.text
        assert notification.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 0}
        assert redis.Redis.from_url(redis_url).zcard(QUEUE_NAME) == 1
        # Both were answered while all 300 idle sockets were open, not after the server closed them.
        assert answered < HEADER_TIMEOUT_S, f"answered {answered:.2f} s after the idle connections opened"
        assert all(still_open(sock) for sock in idle)

        pending = set(idle)
        deadline = opened + HEADER_TIMEOUT_S + 3
        while pending and time.monotonic() < deadline:
            pending = {sock for sock in pending if not closed_by_server(sock)}
            time.sleep(0.05)
        closed_after = time.monotonic() - opened
        assert not pending, f"{len(pending)} of {IDLE} idle sockets still open {closed_after:.1f} s after opening"
        assert closed_after >= HEADER_TIMEOUT_S - 0.2  # closed by the deadline, not at once
    finally:
        for sock in idle:
            sock.close()
    text = log.read_text()
    assert " ERROR " not in text and "Traceback" not in text, text
