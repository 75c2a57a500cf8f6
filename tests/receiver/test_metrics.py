"""GET /metrics through the receiver's app: webhook outcomes, the queue read at scrape time, Redis away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from arq.connections import ArqRedis
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Message, Receive, Scope, Send

from receiver.app import create_app
from receiver.server import RequestLimit
from tests.conftest import sample
from tests.receiver.test_hubspot_routes import config as hubspot_config
from tests.receiver.test_hubspot_routes import deliver
from tests.receiver.test_routes import config, post
from workers.queue import connect_queue

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def webhooks(samples: Samples, source: str, outcome: str) -> float:
    return samples.get(("crmflow_webhooks_total", (("outcome", outcome), ("source", source))), 0.0)


@pytest.fixture
async def client(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config(), redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
        yield http


async def test_each_outcome_of_a_zoho_callback_is_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)

    await post(client, sample("zoho/appointment_update"))
    await post(client, sample("zoho/appointment_update"))
    await post(client, sample("zoho/leads_insert"))
    await post(client, sample("zoho/appointment_update") | {"token": "wrong"})
    await post(client, b"{", headers={"content-type": "application/json"})
    await client.get("/webhooks/zoho")
    after = await scrape(client)

    for outcome in ("accepted", "duplicate", "ignored", "unauthenticated", "malformed_json", "method_not_allowed"):
        assert webhooks(after, "zoho", outcome) == webhooks(before, "zoho", outcome) + 1, outcome


async def test_the_queue_and_dead_letters_are_read_at_scrape_time(client: httpx.AsyncClient) -> None:
    await post(client, sample("zoho/appointment_update"))

    samples = await scrape(client)

    assert samples[("crmflow_redis_up", ())] == 1
    assert samples[("crmflow_queue_depth", ())] == 1
    assert samples[("crmflow_queue_oldest_age_seconds", ())] >= 0
    assert samples[("crmflow_deadletters", ())] == 0


async def test_a_hubspot_batch_counts_its_records(redis: ArqRedis) -> None:
    app = create_app(hubspot_config(), redis=redis)
    events = sample("hubspot/appointment_reschedule")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
        before = await scrape(http)
        await deliver(http, events)
        await deliver(http, events)
        after = await scrape(http)

    assert webhooks(after, "hubspot", "accepted") == webhooks(before, "hubspot", "accepted") + 1
    assert webhooks(after, "hubspot", "duplicate") == webhooks(before, "hubspot", "duplicate") + 1
    queued = ("crmflow_webhook_events_total", (("outcome", "queued"), ("source", "hubspot")))
    assert after[queued] - before.get(queued, 0.0) >= 1


async def test_redis_away_serves_the_rest_and_says_so() -> None:
    dead = connect_queue("redis://127.0.0.1:1/0")
    app = create_app(config(), redis=dead)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
        before = await scrape(http)
        await post(http, sample("zoho/appointment_update"))
        after = await scrape(http)
    await dead.aclose()

    assert after[("crmflow_redis_up", ())] == 0
    assert ("crmflow_queue_depth", ()) not in after
    assert webhooks(after, "zoho", "queue_unavailable") == webhooks(before, "zoho", "queue_unavailable") + 1


async def test_a_served_source_is_counted_from_start_up(client: httpx.AsyncClient) -> None:
    samples = await scrape(client)

    for outcome in ("accepted", "duplicate", "ignored"):
        assert ("crmflow_webhooks_total", (("outcome", outcome), ("source", "zoho"))) in samples


async def test_a_request_over_the_limit_counts_as_overloaded_and_metrics_are_never_refused(
    client: httpx.AsyncClient,
) -> None:
    answered: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        answered.append(200)

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    limit = RequestLimit(app, max_requests=0)  # every counted request is over the limit
    before = await scrape(client)

    await limit({"type": "http", "path": "/webhooks/hubspot", "method": "POST"}, receive, send)
    await limit({"type": "http", "path": "/metrics", "method": "GET"}, receive, send)

    assert answered == [503, 200]
    after = await scrape(client)
    assert webhooks(after, "hubspot", "overloaded") == webhooks(before, "hubspot", "overloaded") + 1
