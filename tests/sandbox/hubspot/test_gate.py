"""HubSpot auth, rate limits and their headers, and fault rules on HubSpot paths (next to Zoho's)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import APPOINTMENTS, HS_APPOINTMENTS, HS_SCHEDULED, SCHEDULED, Harness

ONE = f"{HS_APPOINTMENTS}/{HS_SCHEDULED}"
AUTH_MESSAGE = "Authentication credentials not found."
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
)


def _limits(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in RATE_HEADERS if name in response.headers}


async def _faults(sb: Harness, *rules: dict[str, Any]) -> None:
    response = await sb.client.post("/_sandbox/faults", json=list(rules))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer pat-na1-wrong"}, {"Authorization": "sandbox-hubspot-token"}, {"Authorization": ""}],
)
async def test_requests_without_the_token_are_401(sb: Harness, headers: dict[str, str]) -> None:
    response = await sb.client.get(ONE, headers=headers)

    assert response.status_code == 401
    body = response.json()
    assert list(body) == ["status", "message", "correlationId", "category"]
    assert body["message"].startswith(AUTH_MESSAGE)
    assert (body["status"], body["category"]) == ("error", "INVALID_AUTHENTICATION")
    assert _limits(response) == {}


async def test_the_bearer_scheme_is_case_insensitive_and_zoho_tokens_do_not_work(sb: Harness) -> None:
    lower = await sb.client.get(ONE, headers={"Authorization": "bearer sandbox-hubspot-token"})
    zoho = await sb.client.get(ONE, headers={"Authorization": f"Zoho-oauthtoken {await sb.new_token()}"})
    crossed = await sb.client.get(
        f"{APPOINTMENTS}/{SCHEDULED}", headers={"Authorization": "Bearer sandbox-hubspot-token"}
    )

    assert (lower.status_code, zoho.status_code, crossed.status_code) == (200, 401, 401)


async def test_every_answer_carries_the_rate_limit_headers(sb: Harness) -> None:
    first = await sb.hs("GET", ONE)
    missing = await sb.hs("GET", f"{HS_APPOINTMENTS}/1")

    assert _limits(first) == {
        "X-HubSpot-RateLimit-Daily": "1000000",
        "X-HubSpot-RateLimit-Daily-Remaining": "999999",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "190",
        "X-HubSpot-RateLimit-Remaining": "189",
    }
    assert missing.status_code == 404
    assert _limits(missing)["X-HubSpot-RateLimit-Remaining"] == "188"
    assert "Retry-After" not in first.headers


async def test_the_ten_second_window_rolls(make: MakeSandbox) -> None:
    sb = await make(hubspot_rate_limit_max=3)
    await sb.hs("GET", ONE)
    sb.clock.advance(seconds=5)
    statuses = [(await sb.hs("GET", ONE)).status_code for _ in range(2)]
    refused = await sb.hs("GET", ONE)
    sb.clock.advance(seconds=5)
    after_first_left = [(await sb.hs("GET", ONE)).status_code for _ in range(2)]
    sb.clock.advance(seconds=5)
    after_all_left = await sb.hs("GET", ONE)

    assert statuses == [200, 200]
    assert refused.status_code == 429
    body = refused.json()
    assert list(body) == ["status", "message", "errorType", "correlationId", "policyName", "groupName"]
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert body["groupName"] == "publicapi:private-app-api-calls-ten-secondly:62515"
    assert _limits(refused)["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in refused.headers
    assert after_first_left == [200, 429]
    assert (after_all_left.status_code, _limits(after_all_left)["X-HubSpot-RateLimit-Remaining"]) == (200, "1")


async def test_the_daily_limit(make: MakeSandbox) -> None:
    sb = await make(hubspot_daily_limit=2, hubspot_portal_id=777)
    statuses = [(await sb.hs("GET", ONE)).status_code for _ in range(2)]
    refused = await sb.hs("GET", ONE)
    sb.clock.advance(days=1)
    next_day = await sb.hs("GET", ONE)

    assert statuses == [200, 200]
    assert refused.status_code == 429
    body = refused.json()
    assert list(body) == ["status", "message", "errorType", "correlationId", "policyName", "requestId"]
    assert (body["message"], body["policyName"]) == ("You have reached your daily limit.", "DAILY")
    assert _limits(refused)["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert next_day.status_code == 200


async def test_unauthenticated_requests_do_not_count(make: MakeSandbox) -> None:
    sb = await make(hubspot_rate_limit_max=1)
    for _ in range(3):
        await sb.client.get(ONE)

    assert (await sb.hs("GET", ONE)).status_code == 200


async def test_reset_restores_the_limits(make: MakeSandbox) -> None:
    sb = await make(hubspot_rate_limit_max=1)
    await sb.hs("GET", ONE)

    await sb.client.post("/_sandbox/reset")

    assert (await sb.hs("GET", ONE)).status_code == 200


async def test_a_429_fault_answers_with_the_ten_secondly_body(sb: Harness) -> None:
    await _faults(sb, {"path_prefix": "/crm/objects/", "status": 429, "times": 1})

    faulted = await sb.hs("GET", ONE)
    after = await sb.hs("GET", ONE)

    assert faulted.status_code == 429
    assert faulted.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert faulted.json()["groupName"] == "publicapi:private-app-api-calls-ten-secondly:62515"
    assert _limits(faulted)["X-HubSpot-RateLimit-Remaining"] == "0"
    assert after.status_code == 200
    assert _limits(after)["X-HubSpot-RateLimit-Remaining"] == "189"  # the faulted call did not count


async def test_a_rule_picks_the_daily_body_by_policy_or_by_body(sb: Harness) -> None:
    daily = {"status": "error", "message": "You have reached your daily limit.", "policyName": "DAILY"}
    await _faults(
        sb,
        {"method": "GET", "status": 429, "times": 1, "rate_limit_policy": "DAILY"},
        {"method": "GET", "status": 429, "times": 1, "body": daily},
    )

    by_policy = await sb.hs("GET", ONE)
    by_body = await sb.hs("GET", ONE)

    assert (by_policy.json()["policyName"], by_policy.json()["errorType"]) == ("DAILY", "RATE_LIMIT")
    assert _limits(by_policy)["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert by_body.json() == daily
    assert _limits(by_body)["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


@pytest.mark.parametrize(("status", "message"), [(500, "internal error"), (503, "Service Unavailable")])
async def test_5xx_faults_answer_in_hubspot_shape(sb: Harness, status: int, message: str) -> None:
    await _faults(sb, {"path_prefix": HS_APPOINTMENTS, "status": status})

    response = await sb.hs("PATCH", ONE, json={"properties": {"hs_appointment_name": "x"}})

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["status", "message", "correlationId", "category"]
    assert (body["status"], body["message"], body["category"]) == ("error", message, "INTERNAL_ERROR")
    assert _limits(response) == {}


async def test_one_rule_answers_each_crm_in_its_own_shape(sb: Harness) -> None:
    await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}")  # fetch the Zoho token before faulting
    await _faults(sb, {"path_prefix": "/crm/", "status": 429, "times": 2})

    zoho = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}")
    hubspot = await sb.hs("GET", ONE)

    assert (zoho.status_code, hubspot.status_code) == (429, 429)
    assert zoho.json()["code"] == "TOO_MANY_REQUESTS"
    assert _limits(zoho) == {}
    assert hubspot.json()["policyName"] == "TEN_SECONDLY_ROLLING"


async def test_after_faults_apply_the_write_and_lose_the_answer(hs: Harness) -> None:
    await _faults(hs, {"method": "PATCH", "status": 502, "after": True, "times": 1})

    response = await hs.hs("PATCH", ONE, json={"properties": {"hs_appointment_status": "NO_SHOW"}})
    await hs.settle()

    assert response.status_code == 502
    assert response.json()["category"] == "INTERNAL_ERROR"
    read = await hs.hs_appointment(HS_SCHEDULED, properties="hs_appointment_status")
    assert read["properties"]["hs_appointment_status"] == "NO_SHOW"
    assert [event["propertyValue"] for event in hs.webhook_events()] == ["NO_SHOW"]


async def test_rate_limit_policy_needs_a_429(sb: Harness) -> None:
    response = await sb.client.post("/_sandbox/faults", json={"status": 500, "rate_limit_policy": "DAILY"})

    assert response.status_code == 422


async def test_requests_are_logged_with_templated_endpoints(sb: Harness) -> None:
    await _faults(sb, {"path_prefix": "/crm/associations/", "status": 500, "times": 1})
    await sb.hs("POST", "/crm/objects/2026-03/notes", json={"properties": {"hs_timestamp": "1", "hs_note_body": "x"}})
    await sb.hs("GET", "/crm/associations/2026-03/notes/appointments/labels")
    await sb.client.get(ONE)

    log = (await sb.client.get("/_sandbox/requests")).json()

    assert log["by_endpoint"] == {
        "POST /crm/objects/2026-03/notes": 1,
        "GET /crm/associations/2026-03/notes/appointments/labels": 1,
        "GET /crm/objects/2026-03/appointments/{id}": 1,
    }
    assert log["by_status"] == {"201": 1, "500": 1, "401": 1}
    assert [entry["fault_id"] is not None for entry in log["requests"]] == [False, True, False]
