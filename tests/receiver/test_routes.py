"""POST /webhooks/zoho end to end inside the app, against real Redis: every answer, and what got queued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from receiver.app import create_app
from receiver.config import ReceiverConfig
from tests.conftest import sample
from workers import keys
from workers.contract import QUEUE_NAME
from workers.queue import connect_queue

TOKEN = "TOKEN_FOR_VERIFICATION_OF_1000000068001"
JSON = {"content-type": "application/json"}


def config(**overrides: Any) -> ReceiverConfig:
    values: dict[str, Any] = {"ZOHO_NOTIFY_TOKEN": TOKEN, **overrides}
    return ReceiverConfig.model_validate(values)


@pytest.fixture
async def client(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config(), redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://receiver") as http:
        yield http


async def queued(redis: ArqRedis) -> int:
    return int(await redis.zcard(QUEUE_NAME))


async def post(client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post("/webhooks/zoho", content=content, headers=JSON if headers is None else headers)


async def test_update_is_queued_once_per_record(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    response = await post(client, sample("zoho/appointment_update"))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 0}
    jobs = await redis.queued_jobs(queue_name=QUEUE_NAME)
    assert [job.function for job in jobs] == ["process_change"]
    event = jobs[0].args[0]
    assert event["record_id"] == "5545974000002555001"
    assert event["operation"] == "update"
    assert event["changed_fields"] == ["Appointment_Start_Time", "Modified_By", "Reschedule_Count"]


async def test_redelivered_notification_makes_no_second_job(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    first = await post(client, sample("zoho/appointment_update"))
    second = await post(client, sample("zoho/appointment_update"))

    assert first.json()["queued"] == 1
    assert second.status_code == 200
    assert second.json() == {"status": "accepted", "queued": 0, "duplicates": 1, "ignored": 0}
    assert await queued(redis) == 1


async def test_one_job_per_distinct_record(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    body = sample("zoho/appointment_update") | {"ids": ["1", "2", "1", 3]}

    response = await post(client, body)

    assert response.json()["queued"] == 3
    assert await queued(redis) == 3


async def test_other_modules_are_acknowledged_not_queued(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    response = await post(client, sample("zoho/leads_insert"))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "queued": 0, "duplicates": 0, "ignored": 1}
    assert await queued(redis) == 0


async def test_channel_allow_list(redis: ArqRedis) -> None:
    app = create_app(config(ZOHO_CHANNEL_IDS="42, 1000000068001"), redis=redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
        allowed = await post(http, sample("zoho/appointment_update"))
        other = await post(http, sample("zoho/appointment_update") | {"channel_id": "7", "server_time": 1})

    assert allowed.status_code == 200
    assert other.status_code == 401
    assert other.json()["detail"] == "channel_id is not one of ZOHO_CHANNEL_IDS"
    assert await queued(redis) == 1


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"),
    [
        (b"{}", {}, 415, "unsupported_media_type"),
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
        (b"{}", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
        (b"", JSON, 400, "malformed_json"),
        (b"{not json", JSON, 400, "malformed_json"),
        (b'{"token": "\xff"}', JSON, 400, "malformed_json"),
        (b"[1, 2]", JSON, 401, "unauthenticated"),
        (orjson.dumps(sample("zoho/appointment_update") | {"token": "wrong"}), JSON, 401, "unauthenticated"),
        (orjson.dumps({k: v for k, v in sample("zoho/appointment_update").items() if k != "token"}), JSON, 401, None),
        (orjson.dumps(sample("zoho/appointment_delete_null_token")), JSON, 401, "unauthenticated"),
        (orjson.dumps(sample("zoho/appointment_update") | {"token": 12}), JSON, 401, "unauthenticated"),
    ],
    ids=[
        "no-content-type",
        "text-plain",
        "form",
        "empty",
        "bad-json",
        "invalid-utf8",
        "not-an-object",
        "wrong-token",
        "no-token",
        "null-token",
        "token-not-string",
    ],
)
async def test_rejections_queue_nothing(
    client: httpx.AsyncClient, redis: ArqRedis, body: bytes, headers: dict[str, str], status: int, error: str | None
) -> None:
    response = await post(client, body, headers)

    assert response.status_code == status
    assert response.json()["error"] == (error or "unauthenticated")
    assert await queued(redis) == 0


async def test_an_accepted_callback_records_the_last_notification_and_a_refused_one_does_not(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    refused = await post(client, sample("zoho/appointment_update") | {"token": "wrong"})
    assert refused.status_code == 401
    assert await redis.exists(keys.last_notification("zoho")) == 0

    await post(client, sample("zoho/appointment_update"))

    assert await redis.exists(keys.last_notification("zoho")) == 1


async def test_schema_mismatch_names_the_failing_fields(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    body = sample("zoho/appointment_update") | {"ids": ["12a"], "operation": "merge"}
    del body["server_time"]

    response = await post(client, body)

    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"ids.0", "operation", "server_time"}
    assert TOKEN not in response.text
    assert await queued(redis) == 0


async def test_body_over_the_cap_is_413_by_header_and_by_stream(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    big = b'{"pad": "' + b"x" * 1_100_000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536]

    declared = await post(client, big)
    streamed = await client.post("/webhooks/zoho", content=chunks(), headers=JSON)

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert "transfer-encoding" in streamed.request.headers
    assert await queued(redis) == 0


async def test_redis_down_answers_503_and_readyz_fails() -> None:
    dead = connect_queue("redis://127.0.0.1:1/0")
    app = create_app(config(), redis=dead)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
        response = await post(http, sample("zoho/appointment_update"))
        ready = await http.get("/readyz")
        health = await http.get("/healthz")
    await dead.aclose()

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "queue_unavailable"
    assert ready.status_code == 503
    assert health.status_code == 200


async def test_readyz_with_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "sources": ["zoho"]}


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/webhooks/zoho")

    assert response.status_code == 405
