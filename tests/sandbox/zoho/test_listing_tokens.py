"""GET Appointments__s paging by page_token: issued, bound to the parameters, expiring, limited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.zoho.listing import TOKEN_LIMIT, ListQuery, PageTokens, parse_list_query, select_page
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import APPOINTMENTS, FakeClock, Harness

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SORTABLE = ("id", "Created_Time", "Modified_Time")


def _records(count: int) -> list[dict[str, Any]]:
    return [{"id": str(10**18 + n), "Modified_Time": NOW - timedelta(seconds=n)} for n in range(count)]


def _query(**params: str) -> ListQuery:
    return parse_list_query({"fields": "id", **params}, fields_required=True, sortable=SORTABLE, tokens=True)


def test_pages_one_to_ten_then_the_token_reach_every_record() -> None:
    records, tokens = _records(2450), PageTokens()
    seen: list[str] = []
    token = None
    for page in range(1, 11):
        chunk, info = select_page(records, _query(page=str(page), sort_by="Modified_Time"), tokens=tokens, now=NOW)
        seen += [record["id"] for record in chunk]
        token = info["next_page_token"]
    while token is not None:
        chunk, info = select_page(records, _query(page_token=token, sort_by="Modified_Time"), tokens=tokens, now=NOW)
        seen += [record["id"] for record in chunk]
        token = info["next_page_token"]
        assert info["page_token_expiry"] == NOW + timedelta(hours=24) or token is None

    assert seen == [record["id"] for record in records]  # newest first, each once


def test_a_token_is_bound_to_the_other_parameters() -> None:
    records, tokens = _records(300), PageTokens()
    _, info = select_page(records, _query(sort_by="Modified_Time"), tokens=tokens, now=NOW)
    changed = _query(page_token=info["next_page_token"], sort_by="Modified_Time", sort_order="asc")

    error = _raises(lambda: select_page(records, changed, tokens=tokens, now=NOW))

    assert (error.status, error.code) == (400, "TOKEN_BOUND_DATA_MISMATCH")


def test_a_token_expires_after_24_hours() -> None:
    records, tokens = _records(300), PageTokens()
    _, info = select_page(records, _query(), tokens=tokens, now=NOW)
    later = NOW + timedelta(hours=24)

    error = _raises(lambda: select_page(records, _query(page_token=info["next_page_token"]), tokens=tokens, now=later))

    assert error.code == "EXPIRED_VALUE"


def test_tokens_reach_at_most_100000_records() -> None:
    tokens = PageTokens()
    query = _query()
    token = tokens.issue(query.bound(), TOKEN_LIMIT, NOW)

    error = _raises(lambda: select_page(_records(3), _query(page_token=token), tokens=tokens, now=NOW))

    assert error.code == "PAGINATION_LIMIT_EXCEEDED"


def test_page_with_a_token_is_ambiguous_unless_configured_otherwise() -> None:
    plain = _raises(lambda: _query(page_token="t", page="10"))
    missing = _raises(
        lambda: parse_list_query(
            {"fields": "id", "page_token": "t"}, fields_required=True, tokens=True, token_with_page=True
        )
    )
    with_page = parse_list_query(
        {"fields": "id", "page_token": "t", "page": "10"}, fields_required=True, tokens=True, token_with_page=True
    )

    assert plain.code == "AMBIGUITY_DURING_PROCESSING"
    assert (missing.code, missing.details) == ("REQUIRED_PARAM_MISSING", {"param_name": "page"})
    assert with_page.page_token == "t"


def _raises(action: Any) -> Any:
    from sandbox.zoho.errors import ZohoApiError

    try:
        action()
    except ZohoApiError as error:
        return error
    raise AssertionError("expected a ZohoApiError")


async def _add(sb: Harness, count: int) -> None:
    for n in range(count):
        response = await sb.client.post("/_sandbox/appointments", json={"Appointment_Name": f"A{n}"})
        assert response.status_code == 201


async def test_the_endpoint_issues_tokens_sorted_by_modified_time(make: MakeSandbox, clock: FakeClock) -> None:
    sb = await make()
    await _add(sb, 5)
    params = {"fields": "id,Modified_Time", "sort_by": "Modified_Time", "per_page": "4"}

    first = (await sb.api("GET", APPOINTMENTS, params=params)).json()
    token = first["info"]["next_page_token"]
    second = (await sb.api("GET", APPOINTMENTS, params={**params, "page_token": token})).json()
    mismatch = await sb.api("GET", APPOINTMENTS, params={**params, "per_page": "3", "page_token": token})
    clock.advance(hours=25)
    sb.drop_token()
    expired = await sb.api("GET", APPOINTMENTS, params={**params, "page_token": token})
    clock.advance(hours=-25)

    assert first["info"]["page_token_expiry"] is not None and first["info"]["more_records"] is True
    third = await sb.api("GET", APPOINTMENTS, params={**params, "page_token": second["info"]["next_page_token"]})
    # Four seed appointments and five new ones, newest first, each once.
    ids = [record["id"] for page in (first, second, third.json()) for record in page["data"]]
    assert len(set(ids)) == len(ids) == 9
    assert third.json()["info"]["next_page_token"] is None
    assert second["info"]["previous_page_token"] == token
    assert mismatch.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
    assert expired.json()["code"] == "EXPIRED_VALUE"


async def test_the_endpoint_can_require_page_10_with_the_token(make: MakeSandbox) -> None:
    sb = await make(zoho_token_with_page=True)
    params = {"fields": "id", "per_page": "2"}
    token = (await sb.api("GET", APPOINTMENTS, params=params)).json()["info"]["next_page_token"]

    alone = await sb.api("GET", APPOINTMENTS, params={**params, "page_token": token})
    with_page = await sb.api("GET", APPOINTMENTS, params={**params, "page_token": token, "page": "10"})

    assert alone.json()["code"] == "REQUIRED_PARAM_MISSING"
    assert with_page.status_code == 200 and len(with_page.json()["data"]) == 2
