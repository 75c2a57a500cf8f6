"""The health page on real Redis: the status reader's view, Redis's answer, and the receiver's /readyz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from arq.connections import ArqRedis

from console.pages.health import probe_receiver
from tests.console.conftest import BEARER, HTML, JSON
from tests.test_dlq import keep, refused
from workers import keys
from workers.heartbeat import Heartbeat, WorkerFacts


async def test_the_page_shows_workers_queue_letters_and_notifications(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    now = datetime.now(UTC)
    facts = WorkerFacts("host-a:41:ab", "host-a", 41, now - timedelta(hours=1), "0.1.0", ("zoho",), now)
    await Heartbeat(redis, facts, clock=lambda: now).beat()
    await keep(redis, refused())
    await redis.set(keys.last_notification("zoho"), int(now.timestamp() * 1000) - 120_000)

    page = await client.get("/health", headers=BEARER | HTML)
    data = await client.get("/health", headers=BEARER | JSON)

    assert page.status_code == 200
    assert "host-a:41:ab" in page.text
    assert "1 alive" in page.text
    assert "NOT_ALLOWED" in page.text
    assert "2m ago" in page.text
    assert "Set CONSOLE_RECEIVER_URL" in page.text
    body = data.json()
    assert body["redis"]["ok"] is True
    assert body["receiver"] is None
    assert body["status"]["deadletters"]["total"] == 1
    assert [w["worker_id"] for w in body["status"]["workers"]] == ["host-a:41:ab"]


async def test_no_worker_alive_is_shown_as_a_problem(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    page = await client.get("/health", headers=BEARER | HTML)

    assert "No worker alive" in page.text


@pytest.fixture
async def receiver() -> AsyncIterator[httpx.AsyncClient]:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down":
            raise httpx.ConnectError("refused", request=request)
        status = 200 if request.url.host == "ready" else 503
        return httpx.Response(status, json={"status": "ready" if status == 200 else "unavailable"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        yield http


async def test_the_receiver_probe_reads_readyz(receiver: httpx.AsyncClient) -> None:
    ready = await probe_receiver(receiver, "http://ready:8000")
    unready = await probe_receiver(receiver, "http://unready:8000")
    down = await probe_receiver(receiver, "http://down:8000")

    assert ready is not None and (ready.ok, ready.detail) == (True, "/readyz answered 200")
    assert unready is not None and (unready.ok, unready.detail) == (False, "/readyz answered 503")
    assert down is not None and (down.ok, down.detail) == (False, "ConnectError from http://down:8000/readyz")
    assert await probe_receiver(receiver, None) is None
