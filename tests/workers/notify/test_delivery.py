"""Notify delivery against a real local endpoint: signed, classified, bounded in time and size, never redirected."""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from standardwebhooks import Webhook

from sandbox.notify_endpoint import Answer, NotifyEndpoint
from workers.errors import CrmRejectedError, CrmTransientError, NotifyRejectedError, NotifyUnavailableError
from workers.metrics import REGISTRY
from workers.notify.delivery import MAX_RETRY_AFTER_S, DeliveryLimits, deliver, retry_after_s
from workers.notify.signing import parse_secret

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
KEY = parse_secret(SECRET, env_name="TEST")
BODY = orjson.dumps({"type": "crmflow.change", "record_id": "1"})
FAST = DeliveryLimits(timeout_s=0.5, max_response_bytes=1024)


@pytest.fixture
def endpoint() -> Iterator[NotifyEndpoint]:
    with NotifyEndpoint(SECRET) as serving:
        yield serving


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_2xx_is_delivered_signed_as_standard_webhooks_says(
    endpoint: NotifyEndpoint, http: httpx.AsyncClient
) -> None:
    delivered = await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="msg_a", key=KEY, now=now())

    assert delivered.status == 200
    (received,) = endpoint.received("/hook")
    assert received.verified is True
    assert Webhook(SECRET).verify(received.body, dict(received.headers)) == {"type": "crmflow.change", "record_id": "1"}
    assert received.headers["webhook-id"] == "msg_a"
    assert received.headers["content-type"] == "application/json"
    assert received.body == BODY


async def test_each_attempt_is_signed_at_its_own_time_under_the_same_id(
    endpoint: NotifyEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint.answer("/hook", Answer(503))
    first_at = now() - timedelta(seconds=3)

    with pytest.raises(NotifyUnavailableError):
        await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="msg_b", key=KEY, now=first_at)
    await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="msg_b", key=KEY, now=now())

    first, second = endpoint.received("/hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_b"
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert first.headers["webhook-signature"] != second.headers["webhook-signature"]
    assert first.verified and second.verified


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_5xx_and_408_are_transient(endpoint: NotifyEndpoint, http: httpx.AsyncClient, status: int) -> None:
    endpoint.answer("/hook", Answer(status, body=b"down for maintenance"))

    with pytest.raises(NotifyUnavailableError, match=f"answered {status}: down for maintenance") as raised:
        await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now())

    assert isinstance(raised.value, CrmTransientError)
    assert raised.value.code == f"HTTP_{status}" and raised.value.quoted


async def test_429_is_transient_and_its_retry_after_is_honoured(
    endpoint: NotifyEndpoint, http: httpx.AsyncClient
) -> None:
    endpoint.answer("/hook", Answer(429, headers={"retry-after": "7"}))

    with pytest.raises(NotifyUnavailableError) as raised:
        await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now())

    assert raised.value.code == "HTTP_429" and raised.value.retry_after_s == 7.0


def test_retry_after_as_a_date_counts_from_now() -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    assert retry_after_s("Mon, 30 Nov 2026 12:00:30 GMT", at) == 30.0
    assert retry_after_s("Mon, 30 Nov 2026 11:00:00 GMT", at) == 0.0
    assert retry_after_s("whenever", at) is None
    assert retry_after_s(None, at) is None


def test_retry_after_is_capped_so_an_endpoint_cannot_park_the_job_for_years() -> None:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    assert retry_after_s("999999999", at) == MAX_RETRY_AFTER_S == 300.0
    assert retry_after_s("Fri, 30 Nov 2040 12:00:00 GMT", at) == MAX_RETRY_AFTER_S
    assert retry_after_s("299", at) == 299.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_other_4xx_are_final(endpoint: NotifyEndpoint, http: httpx.AsyncClient, status: int) -> None:
    endpoint.answer("/hook", Answer(status, body=b'{"error":"no such channel"}'))

    with pytest.raises(NotifyRejectedError, match=f"answered {status}") as raised:
        await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now())

    assert isinstance(raised.value, CrmRejectedError)
    assert raised.value.code == f"HTTP_{status}"
    assert "no such channel" in str(raised.value)
    assert "/hook" not in str(raised.value)  # the host only: a webhook URL's path may be its secret


async def test_a_redirect_is_not_followed_and_is_final(endpoint: NotifyEndpoint) -> None:
    endpoint.answer("/hook", Answer(302, headers={"location": f"{endpoint.url}/elsewhere"}))
    # Even a client told to follow redirects does not, for notify.
    async with httpx.AsyncClient(follow_redirects=True) as following:
        with pytest.raises(NotifyRejectedError, match=r"302, a redirect .*does not follow redirects") as raised:
            await deliver(following, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now())

    assert raised.value.code == "HTTP_302"
    assert len(endpoint.received("/hook")) == 1
    assert endpoint.received("/elsewhere") == []


async def test_a_slow_answer_times_out_as_a_transient_error(endpoint: NotifyEndpoint, http: httpx.AsyncClient) -> None:
    endpoint.answer("/hook", Answer(delay_s=3))
    started = time.monotonic()

    with pytest.raises(NotifyUnavailableError) as raised:
        await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now(), limits=FAST)

    assert raised.value.code == "TIMEOUT"
    assert time.monotonic() - started < 2


async def test_an_endless_answer_is_read_up_to_the_cap_only(endpoint: NotifyEndpoint, http: httpx.AsyncClient) -> None:
    endpoint.answer("/hook", Answer(endless=True))
    started = time.monotonic()

    delivered = await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now(), limits=FAST)

    assert delivered.status == 200 and delivered.truncated and delivered.read_bytes == 1024
    assert time.monotonic() - started < 2


async def test_a_huge_refusal_is_quoted_in_part(endpoint: NotifyEndpoint, http: httpx.AsyncClient) -> None:
    endpoint.answer("/hook", Answer(400, body=b"e" * 5_000_000))

    with pytest.raises(NotifyRejectedError) as raised:
        await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now(), limits=FAST)

    assert str(raised.value).endswith("e" * 200 + "…")


async def test_no_connection_is_transient(http: httpx.AsyncClient) -> None:
    with NotifyEndpoint() as gone:
        url = f"{gone.url}/hook"

    with pytest.raises(NotifyUnavailableError) as raised:
        await deliver(http, url, BODY, msg_id="m", key=None, now=now(), limits=FAST)

    assert raised.value.code == "CONNECTION"


async def test_a_url_that_cannot_be_requested_is_final(http: httpx.AsyncClient) -> None:
    with pytest.raises(NotifyRejectedError) as raised:
        await deliver(http, "ftp://127.0.0.1/hook", BODY, msg_id="m", key=None, now=now())

    assert raised.value.code == "BAD_URL"


async def test_without_a_key_the_delivery_is_unsigned(http: httpx.AsyncClient) -> None:
    with NotifyEndpoint() as unsigned:
        await deliver(http, f"{unsigned.url}/hook", BODY, msg_id="msg_u", key=None, now=now())
        (received,) = unsigned.received()

    assert received.verified is None
    assert "webhook-signature" not in received.headers
    assert received.headers["webhook-id"] == "msg_u"


async def test_every_request_is_counted_by_status_class(endpoint: NotifyEndpoint, http: httpx.AsyncClient) -> None:
    def count(status: str) -> float:
        return REGISTRY.get_sample_value("crmflow_notify_requests_total", {"status": status}) or 0.0

    before = {status: count(status) for status in ("2xx", "4xx", "5xx")}
    endpoint.answer("/hook", Answer(500), Answer(404))
    for _ in range(3):
        with contextlib.suppress(NotifyUnavailableError, NotifyRejectedError):
            await deliver(http, f"{endpoint.url}/hook", BODY, msg_id="m", key=KEY, now=now())

    assert {status: count(status) - before[status] for status in before} == {"2xx": 1, "4xx": 1, "5xx": 1}
