"""POST .../appointments/search: filters on hs_lastmodifieddate, sorts, paging, the 10,000 cap, its own limit."""

from __future__ import annotations

from typing import Any

from sandbox.hubspot.time import epoch_ms
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import HS_APPOINTMENTS, FakeClock, Harness

SEARCH = f"{HS_APPOINTMENTS}/search"
MODIFIED = "hs_lastmodifieddate"


def _window(since_ms: int, until_ms: int, **extra: Any) -> dict[str, Any]:
    filters = [
        {"propertyName": MODIFIED, "operator": "GTE", "value": str(since_ms)},
        {"propertyName": MODIFIED, "operator": "LTE", "value": str(until_ms)},
    ]
    sorts = [{"propertyName": MODIFIED, "direction": "ASCENDING"}]
    return {"filterGroups": [{"filters": filters}], "sorts": sorts, "properties": [MODIFIED], "limit": 200, **extra}


async def _create(sb: Harness, clock: FakeClock, count: int) -> list[str]:
    ids = []
    for n in range(count):
        clock.advance(milliseconds=10)
        response = await sb.client.post(
            "/_sandbox/hubspot/appointments", json={"properties": {"hs_appointment_name": f"A{n}"}}
        )
        ids.append(response.json()["id"])
    return ids


async def test_a_window_on_hs_lastmodifieddate_sorted_ascending(make: MakeSandbox, clock: FakeClock) -> None:
    sb = await make(hubspot_search_per_s=1000)
    start = epoch_ms(clock.now)
    ids = await _create(sb, clock, 5)
    until = epoch_ms(clock.now)

    body = (await sb.hs("POST", SEARCH, json=_window(start + 15, until, limit=2))).json()
    after = await sb.hs("POST", SEARCH, json=_window(start + 15, until, limit=2, after=body["paging"]["next"]["after"]))
    between = {"propertyName": MODIFIED, "operator": "BETWEEN", "value": str(start + 15), "highValue": str(until)}
    ranged = (await sb.hs("POST", SEARCH, json={"filterGroups": [{"filters": [between]}], "limit": 10})).json()

    assert body["total"] == 4  # the first one was modified before the window
    assert [item["id"] for item in body["results"]] == ids[1:3]
    assert set(body["results"][0]) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert [item["id"] for item in after.json()["results"]] == ids[3:5]
    assert "paging" not in after.json()
    assert "x-hubspot-ratelimit-remaining" not in after.headers  # search answers carry no rate-limit headers
    assert sorted(item["id"] for item in ranged["results"]) == ids[1:]


async def test_descending_sort_and_v3_path(make: MakeSandbox, clock: FakeClock) -> None:
    sb = await make(hubspot_search_per_s=1000)
    ids = await _create(sb, clock, 3)
    body = {"sorts": [{"propertyName": MODIFIED, "direction": "DESCENDING"}], "limit": 3}

    answer = (await sb.hs("POST", "/crm/v3/objects/0-421/search", json=body)).json()

    assert [item["id"] for item in answer["results"]] == list(reversed(ids))


async def test_limits_and_bad_requests_are_400(make: MakeSandbox) -> None:
    sb = await make(hubspot_search_per_s=1000)
    cases = [
        {"limit": 201},
        {"after": "10000"},
        {"filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": "NEAR", "value": "1"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": MODIFIED, "operator": "GTE", "value": "soon"}]}]},
        {"sorts": [MODIFIED, "hs_createdate"]},
    ]

    answers = [await sb.hs("POST", SEARCH, json=case) for case in cases]

    assert [(answer.status_code, answer.json()["category"]) for answer in answers] == [(400, "VALIDATION_ERROR")] * 5


async def test_paging_stops_at_10000_results_while_total_counts_all() -> None:
    from datetime import UTC, datetime

    from sandbox.hubspot.catalogue import APPOINTMENTS
    from sandbox.hubspot.records import HubRecord, Source
    from sandbox.hubspot.search import parse_search, search

    now = datetime(2026, 3, 2, tzinfo=UTC)
    records = [HubRecord.new(APPOINTMENTS, str(1000 + n), Source.integration(1), now) for n in range(10_050)]

    last = search(records, parse_search({"limit": 200, "after": "9800"}))

    assert last["total"] == 10_050
    assert len(last["results"]) == 200
    assert "paging" not in last


async def test_search_has_its_own_limit_of_five_a_second(make: MakeSandbox, clock: FakeClock) -> None:
    sb = await make()

    answers = [await sb.hs("POST", SEARCH, json={"limit": 1}) for _ in range(6)]
    other = await sb.hs("GET", f"{HS_APPOINTMENTS}/51204030001")
    clock.advance(seconds=1)
    later = await sb.hs("POST", SEARCH, json={"limit": 1})

    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    assert answers[-1].json()["message"] == "You have reached your secondly limit."
    assert other.status_code == 200  # the ten-secondly limit is not touched by searches
    assert later.status_code == 200


async def test_a_record_modified_while_paging_shifts_later_pages(make: MakeSandbox, clock: FakeClock) -> None:
    sb = await make(hubspot_search_per_s=1000)
    start = epoch_ms(clock.now)
    ids = await _create(sb, clock, 4)
    until = epoch_ms(clock.now)
    first = (await sb.hs("POST", SEARCH, json=_window(start, until, limit=2))).json()
    clock.advance(seconds=1)
    await sb.client.patch(
        f"/_sandbox/hubspot/appointments/{ids[0]}", json={"properties": {"hs_appointment_name": "moved"}}
    )

    second = (await sb.hs("POST", SEARCH, json=_window(start, until, limit=2, after="2"))).json()

    # ids[0] left the window, so the offset now skips ids[2]: a client must not trust `after` across pages.
    assert [item["id"] for item in first["results"]] == ids[:2]
    assert [item["id"] for item in second["results"]] == ids[3:]
