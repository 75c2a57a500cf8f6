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


async def test_update_appointment_puts_the_fields_of_one_record(redis: ArqRedis) -> None:
    sent: list[tuple[str, bytes]] = []

    def api(request: httpx.Request) -> httpx.Response:
        sent.append((f"{request.method} {request.url.path}", request.content))
        details = {"id": "9", "Modified_Time": "2026-11-21T09:00:01+00:00"}
        return httpx.Response(200, json={"data": [{"code": "SUCCESS", "details": details, "status": "success"}]})

    assert await client(redis, api, []).update_appointment("9", {"Moved_By": "crmflow"}) == "9"
    assert sent == [("PUT /crm/v7/Appointments__s/9", b'{"data":[{"Moved_By":"crmflow"}]}')]


@pytest.mark.parametrize(
    ("status", "entry", "error", "code"),
    [
        (
            400,
            {"code": "DEPENDENT_FIELD_MISSING", "details": {"api_name": "Appointment_Start_Time"}},
            "rejected",
            "DEPENDENT_FIELD_MISSING",
        ),
        (403, {"code": "NOT_ALLOWED", "details": {}}, "rejected", "NOT_ALLOWED"),
        (200, {"code": "INVALID_DATA", "details": {"api_name": "Visits"}}, "rejected", "INVALID_DATA"),
    ],
)
async def test_update_appointment_maps_zoho_per_record_refusals(
    redis: ArqRedis, status: int, entry: dict[str, object], error: str, code: str
) -> None:
    from workers.errors import CrmRejectedError

    answer = {"data": [{**entry, "message": "no", "status": "error"}]}
    zoho = client(redis, lambda r: httpx.Response(status, json=answer), [])

    with pytest.raises(CrmRejectedError) as refused:
        await zoho.update_appointment("9", {"Reschedule_Note": "x"})

    assert refused.value.code == code and refused.value.quoted


async def test_update_of_an_appointment_zoho_no_longer_has_is_not_found(redis: ArqRedis) -> None:
    from workers.errors import CrmNotFoundError

    gone = {"code": "INVALID_DATA", "details": {"resource_path_index": 1}, "message": "invalid id", "status": "error"}

    with pytest.raises(CrmNotFoundError):
        await client(redis, lambda r: httpx.Response(400, json=gone), []).update_appointment("9", {"A": "b"})


async def test_add_note_names_the_appointment_as_parent(redis: ArqRedis) -> None:
    bodies: list[bytes] = []

    def api(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(201, json={"data": [{"code": "SUCCESS", "details": {"id": "77"}, "status": "success"}]})

    log: list[str] = []
    assert await client(redis, api, log).add_note("9", "Cancelled", "It was due Tuesday") == "77"
    assert log[0].split()[:2] == ["POST", "/crm/v7/Notes"]
    assert bodies == [
        b'{"data":[{"Note_Title":"Cancelled","Note_Content":"It was due Tuesday",'
        b'"Parent_Id":{"module":{"api_name":"Appointments__s"},"id":"9"}}]}'
    ]


async def test_notes_of_reads_every_page_until_zoho_has_no_more(redis: ArqRedis) -> None:
    pages: list[dict[str, str]] = []

    def api(request: httpx.Request) -> httpx.Response:
        pages.append(dict(request.url.params))
        page = int(request.url.params["page"])
        note = {"Note_Title": "t", "Note_Content": f"n{page}", "id": str(page)}
        return httpx.Response(200, json={"data": [note], "info": {"more_records": page < 2}})

    notes = await client(redis, api, []).notes_of("9")

    assert [note["Note_Content"] for note in notes] == ["n1", "n2"]
    assert pages == [
        {"fields": "Note_Title,Note_Content", "per_page": "200", "page": "1"},
        {"fields": "Note_Title,Note_Content", "per_page": "200", "page": "2"},
    ]


async def test_notes_of_an_appointment_without_any_is_empty(redis: ArqRedis) -> None:
    assert await client(redis, lambda r: httpx.Response(204), []).notes_of("9") == []


async def test_notes_of_stops_after_its_page_cap(redis: ArqRedis) -> None:
    from workers.crm.zoho import MAX_NOTE_PAGES

    calls: list[str] = []

    def api(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.params["page"])
        return httpx.Response(200, json={"data": [{"id": "1"}], "info": {"more_records": True}})

    assert len(await client(redis, api, []).notes_of("9")) == MAX_NOTE_PAGES
    assert len(calls) == MAX_NOTE_PAGES
