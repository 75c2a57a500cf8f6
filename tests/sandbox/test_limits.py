"""The sandbox enforcing the CRMs' limits: Zoho's concurrency cap, HubSpot's 10-second window and search limit."""

from __future__ import annotations

import asyncio

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import APPOINTMENTS, HS_APPOINTMENTS, HS_SCHEDULED, SCHEDULED


async def test_zoho_answers_429_beyond_its_concurrency_cap(make: MakeSandbox) -> None:
    sb = await make(zoho_max_concurrency=2)
    await sb.new_token()
    rule = {"path_prefix": APPOINTMENTS, "method": "GET", "delay_ms": 300}
    assert (await sb.client.post("/_sandbox/faults", json=[rule])).status_code == 200

    answers = await asyncio.gather(*(sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}") for _ in range(4)))
    after = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}")  # the calls in flight have ended

    assert sorted(a.status_code for a in answers) == [200, 200, 429, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert after.status_code == 200
    by_status = (await sb.client.get("/_sandbox/requests")).json()["by_status"]
    assert by_status["429"] == 2


async def test_without_a_cap_zoho_serves_every_call(make: MakeSandbox) -> None:
    sb = await make()
    await sb.new_token()

    answers = await asyncio.gather(*(sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}") for _ in range(30)))

    assert {a.status_code for a in answers} == {200}


async def test_hubspot_s_window_size_is_configurable(make: MakeSandbox) -> None:
    sb = await make(hubspot_rate_limit_max=3)

    answers = [await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[3].json()["policyName"] == "TEN_SECONDLY_ROLLING"


async def test_hubspot_search_is_limited_per_second_apart_from_the_window(make: MakeSandbox) -> None:
    sb = await make(hubspot_rate_limit_max=3, hubspot_search_per_s=2)
    search = f"{HS_APPOINTMENTS}/search"

    answers = [await sb.hs("POST", search, json={"limit": 1}) for _ in range(3)]
    read = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}")

    assert [a.status_code == 429 for a in answers] == [False, False, True]
    assert answers[2].json()["message"] == "You have reached your secondly limit."
    assert "X-HubSpot-RateLimit-Remaining" not in answers[2].headers
    assert read.headers["X-HubSpot-RateLimit-Remaining"] == "2"  # searches did not use the window
