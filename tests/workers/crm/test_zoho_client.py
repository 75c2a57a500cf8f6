"""ZohoClient over a MockTransport Zoho: auth header, 401 refresh-and-retry, error mapping."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.errors import CrmAuthError, CrmTransientError

APPOINTMENT = {"id": "9", "Modified_Time": "2026-11-21T09:00:00+00:00", "Appointment_Name": "AC Repair"}
Handler = Callable[[httpx.Request], httpx.Response]


def client(redis: ArqRedis, api: Handler, log: list[str]) -> ZohoClient:
    issued = iter(range(1, 100))

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": f"t{next(issued)}", "expires_in": 3600})
        log.append(f"{request.method} {request.url.path} {request.headers['authorization']}")
        return api(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    tokens = ZohoTokens(
        redis,
        http,
        accounts_url="https://accounts.example",
        client_id="c",
        client_secret=SecretStr("s"),
        refresh_token=SecretStr("r"),
    )
    return ZohoClient(http, api_domain="https://api.example", tokens=tokens)


async def test_get_appointment_uses_the_shared_token(redis: ArqRedis) -> None:
    log: list[str] = []
    zoho = client(redis, lambda r: httpx.Response(200, json={"data": [APPOINTMENT]}), log)

    record = await zoho.get_appointment("9")

    assert record.fields["Appointment_Name"] == "AC Repair"
    assert log == ["GET /crm/v7/Appointments__s/9 Zoho-oauthtoken t1"]


async def test_expired_token_is_refreshed_and_the_call_retried_once(redis: ArqRedis) -> None:
    log: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"].endswith("t1"):
            return httpx.Response(401, json={"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token"})
        return httpx.Response(200, json={"data": [APPOINTMENT]})

    record = await client(redis, api, log).get_appointment("9")

    assert record.id == "9"
    assert log == [
        "GET /crm/v7/Appointments__s/9 Zoho-oauthtoken t1",
        "GET /crm/v7/Appointments__s/9 Zoho-oauthtoken t2",
    ]


async def test_scope_mismatch_is_not_refreshed(redis: ArqRedis) -> None:
    log: list[str] = []
    zoho = client(redis, lambda r: httpx.Response(401, json={"code": "OAUTH_SCOPE_MISMATCH", "message": "m"}), log)

    with pytest.raises(CrmAuthError) as raised:
        await zoho.get_appointment("9")

    assert raised.value.code == "OAUTH_SCOPE_MISMATCH"
    assert len(log) == 1


async def test_timeouts_and_connection_errors_are_transient(redis: ArqRedis) -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(CrmTransientError) as slow:
        await client(redis, timeout, []).get_appointment("9")
    with pytest.raises(CrmTransientError) as down:
        await client(redis, refused, []).get_appointment("9")

    assert slow.value.code == "TIMEOUT"
    assert down.value.code == "CONNECTION"


async def test_history_read_and_write(redis: ArqRedis) -> None:
    log: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            assert request.url.params["fields"].startswith("Appointment_Name,")
            return httpx.Response(204)
        return httpx.Response(201, json={"data": [{"code": "SUCCESS", "details": {"id": "55"}, "status": "success"}]})

    zoho = client(redis, api, log)

    assert await zoho.list_reschedule_history("9") == []
    assert await zoho.add_reschedule_history({"Rescheduled_From": "x"}) == "55"
    assert [line.split()[1] for line in log] == [
        "/crm/v7/Appointments__s/9/Appointments_Rescheduled_History__s",
        "/crm/v7/Appointments_Rescheduled_History__s",
    ]


async def test_a_token_pushed_out_by_newer_ones_is_refreshed_too(redis: ArqRedis) -> None:
    log: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"].endswith("t1"):
            return httpx.Response(401, json={"code": "INVALID_OAUTHTOKEN", "message": "invalid oauth token"})
        return httpx.Response(200, json={"data": [APPOINTMENT]})

    assert (await client(redis, api, log).get_appointment("9")).id == "9"
    assert [line.rsplit(" ", 1)[1] for line in log] == ["t1", "t2"]


def _listing(token: str | None = None, more: bool = True) -> httpx.Response:
    info = {"more_records": more, "next_page_token": token}
    return httpx.Response(200, json={"data": [APPOINTMENT], "info": info})


async def test_list_modified_asks_for_ids_and_modified_times_newest_first(redis: ArqRedis) -> None:
    seen: list[dict[str, str]] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return _listing("tok")

    listing = await client(redis, api, []).list_modified(page=3)

    assert seen == [
        {"fields": "id,Modified_Time", "sort_by": "Modified_Time", "sort_order": "desc", "per_page": "200", "page": "3"}
    ]
    assert (listing.records[0].record_id, listing.more_records, listing.next_page_token) == ("9", True, "tok")


@pytest.mark.parametrize("refusal", ["REQUIRED_PARAM_MISSING", "TOKEN_BOUND_DATA_MISMATCH"])
async def test_a_token_goes_alone_unless_zoho_wants_page_10_with_it(redis: ArqRedis, refusal: str) -> None:
    pages: list[str | None] = []

    def api(request: httpx.Request) -> httpx.Response:
        pages.append(request.url.params.get("page"))
        if request.url.params.get("page") != "10":
            return httpx.Response(400, json={"code": refusal, "details": {}, "message": "no", "status": "error"})
        return _listing()

    zoho = client(redis, api, [])
    await zoho.list_modified(page_token="t1")
    await zoho.list_modified(page_token="t2")

    assert pages == [None, "10", "10"]  # learnt once, then kept


async def test_with_page_10_refused_as_ambiguous_the_token_goes_alone_again(redis: ArqRedis) -> None:
    pages: list[str | None] = []
    answers = iter(["REQUIRED_PARAM_MISSING", None, "AMBIGUITY_DURING_PROCESSING", None])

    def api(request: httpx.Request) -> httpx.Response:
        pages.append(request.url.params.get("page"))
        code = next(answers)
        if code is not None:
            return httpx.Response(400, json={"code": code, "details": {}, "message": "no", "status": "error"})
        return _listing()

    zoho = client(redis, api, [])
    await zoho.list_modified(page_token="t1")
    await zoho.list_modified(page_token="t2")

    assert pages == [None, "10", "10", None]


async def test_other_token_errors_are_not_retried(redis: ArqRedis) -> None:
    from workers.errors import CrmRejectedError

    calls: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(400, json={"code": "EXPIRED_VALUE", "details": {}, "message": "old", "status": "error"})

    with pytest.raises(CrmRejectedError) as caught:
        await client(redis, api, []).list_modified(page_token="t")

    assert caught.value.code == "EXPIRED_VALUE" and len(calls) == 1
