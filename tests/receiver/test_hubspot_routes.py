"""POST /webhooks/hubspot against real Redis: signatures, batches, coalescing, redeliveries, what gets queued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
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

SECRET = "hubspot-client-secret"
PUBLIC = "https://crmflow.example.com"


def config(**overrides: Any) -> ReceiverConfig:
    values: dict[str, Any] = {"HUBSPOT_CLIENT_SECRET": SECRET, "PUBLIC_BASE_URL": PUBLIC, **overrides}
    return ReceiverConfig.model_validate(values)


def signed(body: bytes, uri: str, *, secret: str = SECRET, age_ms: int = 0) -> dict[str, str]:
    """Headers as HubSpot sends them, signed here per HubSpot's documented v3 algorithm."""
    timestamp = str(int(time.time() * 1000) - age_ms)
    message = b"POST" + uri.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {
        "content-type": "application/json",
        "x-hubspot-signature-v3": signature,
        "x-hubspot-request-timestamp": timestamp,
    }


@pytest.fixture
async def client(redis: ArqRedis) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(config(), redis=redis)
    # The app sees http://internal:8000 (behind a TLS proxy); HubSpot signed the public https URL.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:8000") as http:
        yield http


async def deliver(client: httpx.AsyncClient, events: Any, path: str = "/webhooks/hubspot", **kw: Any) -> httpx.Response:
    body = orjson.dumps(events)
    return await client.post(path, content=body, headers=signed(body, PUBLIC + path, **kw))


async def jobs(redis: ArqRedis) -> list[dict[str, Any]]:
    return [job.args[0] for job in await redis.queued_jobs(queue_name=QUEUE_NAME)]


async def test_a_batch_becomes_one_job_per_appointment(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    response = await deliver(client, sample("hubspot/appointment_reschedule"))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 1}
    (job,) = await jobs(redis)
    assert job["source"] == "hubspot"
    assert job["module"] == "appointments"
    assert job["record_id"] == "30118"
    assert job["operation"] == "update"
    assert job["changed_fields"] == ["hs_appointment_end", "hs_appointment_start"]
    assert job["notified_at_ms"] == 1795000000100
    assert job["channel_id"] == "62515"


async def test_redelivery_makes_no_new_work_even_regrouped(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    batch = sample("hubspot/appointment_reschedule")
    await deliver(client, batch)
    again = [event | {"attemptNumber": 1} for event in batch]

    whole = await deliver(client, again)
    part = await deliver(client, again[1:])

    assert whole.json() == {"status": "accepted", "queued": 0, "duplicates": 2, "ignored": 1}
    assert part.json() == {"status": "accepted", "queued": 0, "duplicates": 1, "ignored": 1}
    assert len(await jobs(redis)) == 1


async def test_out_of_order_events_coalesce_to_the_latest(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    start, end, _ = sample("hubspot/appointment_reschedule")
    later = start | {"occurredAt": 1795000009000, "eventId": 1}

    await deliver(client, [later, end, start])

    (job,) = await jobs(redis)
    assert job["notified_at_ms"] == 1795000009000


async def test_deletion_wins_and_other_objects_are_only_counted(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    start, _, contact = sample("hubspot/appointment_reschedule")
    deleted = start | {"subscriptionType": "object.deletion", "propertyName": None, "occurredAt": 1795000000200}

    response = await deliver(client, [start, deleted, contact, contact | {"objectId": 9}])

    assert response.json()["ignored"] == 2
    (job,) = await jobs(redis)
    assert job["operation"] == "delete"


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"secret": "wrong"}, "X-HubSpot-Signature-v3 does not match"),
        ({"age_ms": 301_000}, "X-HubSpot-Request-Timestamp is older than 5 minutes"),
    ],
)
async def test_bad_signatures_are_401_and_queue_nothing(
    client: httpx.AsyncClient, redis: ArqRedis, kwargs: dict[str, Any], detail: str
) -> None:
    response = await deliver(client, sample("hubspot/appointment_reschedule"), **kwargs)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": detail}
    assert await jobs(redis) == []
    assert await redis.exists(keys.last_notification("hubspot")) == 0


async def test_a_batch_of_nothing_new_still_records_the_last_notification(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    (_, _, contact) = sample("hubspot/appointment_reschedule")

    response = await deliver(client, [contact])

    assert response.json()["ignored"] == 1
    assert await redis.exists(keys.last_notification("hubspot")) == 1


async def test_signature_over_the_internal_url_is_refused(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    body = orjson.dumps(sample("hubspot/appointment_reschedule"))

    response = await client.post(
        "/webhooks/hubspot", content=body, headers=signed(body, "http://internal:8000/webhooks/hubspot")
    )

    assert response.status_code == 401
    assert await jobs(redis) == []


async def test_altered_body_is_refused(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    body = orjson.dumps(sample("hubspot/appointment_reschedule"))
    headers = signed(body, PUBLIC + "/webhooks/hubspot")

    response = await client.post("/webhooks/hubspot", content=body.replace(b"30118", b"30119"), headers=headers)

    assert response.status_code == 401
    assert await jobs(redis) == []


async def test_trailing_slash_and_query_are_part_of_what_is_signed(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    events = sample("hubspot/appointment_reschedule")

    slash = await deliver(client, events, "/webhooks/hubspot/")
    query = await deliver(client, [e | {"occurredAt": 1} for e in events], "/webhooks/hubspot?app=crm%3Aflow&x=%20")

    assert slash.status_code == 200
    assert query.status_code == 401  # the test signed "%3A" literally; HubSpot signs it decoded
    body = orjson.dumps([e | {"occurredAt": 2} for e in events])
    decoded = signed(body, PUBLIC + "/webhooks/hubspot?app=crm:flow&x=%20")
    ok = await client.post("/webhooks/hubspot?app=crm%3Aflow&x=%20", content=body, headers=decoded)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([{"eventId": 1}], "0.subscriptionId"),
        ([sample("hubspot/appointment_reschedule")[0] | {"objectId": "30118"}], "0.objectId"),
        ([sample("hubspot/appointment_reschedule")[0] | {"occurredAt": -1}], "0.occurredAt"),
        ({"events": []}, "(body)"),
        ([sample("hubspot/appointment_reschedule")[0] | {"eventId": i} for i in range(101)], "(body)"),
    ],
    ids=["missing-fields", "id-as-text", "negative-time", "not-an-array", "over-100"],
)
async def test_schema_errors_are_422(client: httpx.AsyncClient, redis: ArqRedis, events: Any, field: str) -> None:
    response = await deliver(client, events)

    assert response.status_code == 422
    assert field in {error["field"] for error in response.json()["errors"]}
    assert await jobs(redis) == []


async def test_an_empty_batch_is_accepted(client: httpx.AsyncClient) -> None:
    response = await deliver(client, [])

    assert response.json() == {"status": "accepted", "queued": 0, "duplicates": 0, "ignored": 0}


async def test_v1_only_when_allowed(redis: ArqRedis) -> None:
    body = orjson.dumps(sample("hubspot/appointment_reschedule"))
    v1 = {
        "content-type": "application/json",
        "x-hubspot-signature": hashlib.sha256(SECRET.encode() + body).hexdigest(),
        "x-hubspot-signature-version": "v1",
    }
    answers = []
    for accept in (False, True):
        app = create_app(config(HUBSPOT_ACCEPT_V1=accept), redis=redis)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as http:
            answers.append((await http.post("/webhooks/hubspot", content=body, headers=v1)).status_code)

    assert answers == [401, 200]


async def test_unconfigured_sources_answer_404(redis: ArqRedis) -> None:
    hubspot_only = create_app(config(), redis=redis)
    zoho_only = create_app(ReceiverConfig.model_validate({"ZOHO_NOTIFY_TOKEN": "t"}), redis=redis)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=hubspot_only), base_url="http://r") as hubspot,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=zoho_only), base_url="http://r") as zoho,
    ):
        assert (await hubspot.post("/webhooks/zoho", json={})).status_code == 404
        assert (await zoho.post("/webhooks/hubspot", json=[])).status_code == 404
        assert (await hubspot.get("/readyz")).json()["sources"] == ["hubspot"]


async def test_an_association_change_in_the_batch_is_counted_not_refused(
    client: httpx.AsyncClient, redis: ArqRedis
) -> None:
    # Association-change events name two objects (fromObjectId, toObjectId) and have no objectId; refusing
    # the batch for them would lose the reschedule next to them once HubSpot gives up retrying.
    start, _, _ = sample("hubspot/appointment_reschedule")
    association = {
        "eventId": 5,
        "subscriptionId": 99,
        "portalId": 62515,
        "occurredAt": 1795000000150,
        "subscriptionType": "contact.associationChange",
        "attemptNumber": 0,
        "associationType": "CONTACT_TO_COMPANY",
        "fromObjectId": 1,
        "toObjectId": 2,
        "associationRemoved": False,
    }

    response = await deliver(client, [start, association])

    assert response.json() == {"status": "accepted", "queued": 1, "duplicates": 0, "ignored": 1}


async def test_the_latest_event_decides_the_operation(client: httpx.AsyncClient, redis: ArqRedis) -> None:
    start, _, _ = sample("hubspot/appointment_reschedule")
    deleted = start | {"subscriptionType": "object.deletion", "propertyName": None, "occurredAt": 1795000000200}
    restored = start | {"subscriptionType": "object.restore", "propertyName": None, "occurredAt": 1795000000300}

    await deliver(client, [restored, deleted, start])

    (job,) = await jobs(redis)
    assert job["operation"] == "insert"
