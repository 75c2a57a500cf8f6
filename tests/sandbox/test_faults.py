"""Fault injection: Zoho-shaped error answers, times, seeded probability, delays, lost answers, scoping."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from sandbox.faults import FaultPlan, FaultRule
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import APPOINTMENTS, SCHEDULED, TOKEN_FORM, Harness, error

ONE = f"{APPOINTMENTS}/{SCHEDULED}"


async def _set(sb: Harness, *rules: dict[str, Any]) -> Any:
    response = await sb.client.post("/_sandbox/faults", json=list(rules))
    assert response.status_code == 200, response.text
    return response.json()


async def test_429_for_the_next_n_calls_answers_like_zoho(sb: Harness) -> None:
    await _set(sb, {"path_prefix": "/crm/", "status": 429, "times": 2})

    statuses = [(await sb.api("GET", ONE)).status_code for _ in range(3)]
    throttled = await sb.client.post("/_sandbox/faults", json=[{"status": 429, "times": 1}])
    answer = await sb.api("GET", ONE)

    assert statuses == [429, 429, 200]
    assert throttled.status_code == 200
    assert answer.status_code == 429
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["code"] == "TOO_MANY_REQUESTS"
    assert set(answer.json()) == {"code", "details", "message", "status"}
    assert (answer.json()["details"], answer.json()["status"]) == ({}, "error")


async def test_500_answers_internal_error(sb: Harness) -> None:
    await _set(sb, {"method": "GET", "status": 500})

    response = await sb.api("GET", ONE)

    assert response.status_code == 500
    assert response.json() == error("INTERNAL_ERROR", "Internal Server Error")


async def test_gateway_errors_answer_html_and_bodies_can_be_given(sb: Harness) -> None:
    await _set(
        sb,
        {"path_prefix": ONE, "status": 502, "times": 1},
        {"path_prefix": ONE, "status": 503, "times": 1, "body": {"custom": True}},
    )

    gateway = await sb.api("GET", ONE)
    custom = await sb.api("GET", ONE)

    assert gateway.status_code == 502
    assert gateway.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in gateway.text
    assert (custom.status_code, custom.json()) == (503, {"custom": True})


async def test_faults_apply_to_oauth_but_never_to_the_control_api(sb: Harness) -> None:
    await _set(sb, {"status": 503})

    token = await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)
    control = await sb.client.get("/_sandbox/requests")

    assert token.status_code == 503
    assert control.status_code == 200


async def test_method_and_prefix_narrow_a_rule(sb: Harness) -> None:
    await _set(sb, {"method": "put", "path_prefix": APPOINTMENTS, "status": 500})

    get = await sb.api("GET", ONE)
    put = await sb.reschedule(SCHEDULED, "2026-03-10T15:00:00+00:00")

    assert (get.status_code, put.status_code) == (200, 500)
    assert (await sb.appointment(SCHEDULED))["Reschedule_Count"] == 0


async def test_probability_follows_the_seed(make: MakeSandbox) -> None:
    rule = {"path_prefix": ONE, "status": 500, "probability": 0.5}
    draws = random.Random(7)
    expected = [500 if draws.random() < 0.5 else 200 for _ in range(20)]
    runs: list[list[int]] = []
    for _ in range(2):
        sb = await make(fault_seed=7)
        await _set(sb, rule)
        runs.append([(await sb.api("GET", ONE)).status_code for _ in range(20)])

    assert runs == [expected, expected]
    assert 200 in expected and 500 in expected


async def test_delay_alone_slows_a_normal_answer(sb: Harness) -> None:
    await _set(sb, {"path_prefix": ONE, "delay_ms": 60, "status": None})

    started = time.perf_counter()
    response = await sb.api("GET", ONE)

    assert time.perf_counter() - started >= 0.06
    assert response.status_code == 200


async def test_after_applies_the_write_then_loses_the_answer(sb: Harness) -> None:
    await _set(sb, {"method": "PUT", "status": 502, "after": True, "times": 1})

    response = await sb.reschedule(SCHEDULED, "2026-03-10T15:00:00+00:00")

    assert response.status_code == 502
    assert (await sb.appointment(SCHEDULED))["Reschedule_Count"] == 1
    assert len(sb.callbacks) == 1


async def test_rules_report_their_use_and_can_be_cleared(sb: Harness) -> None:
    await _set(sb, {"status": 500, "times": 3})
    await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)

    [rule] = (await sb.client.get("/_sandbox/faults")).json()["rules"]
    cleared = await sb.client.delete("/_sandbox/faults")

    assert (rule["status"], rule["fired"], rule["remaining"]) == (500, 1, 2)
    assert cleared.json() == {"rules": []}
    assert (await sb.client.post("/oauth/v2/token", data=TOKEN_FORM)).status_code == 200


@pytest.mark.parametrize(
    "rule",
    [{"status": 700}, {"probability": 2, "status": 500}, {}, {"after": True, "delay_ms": 5}, {"colour": "red"}],
)
async def test_invalid_rules_are_refused(sb: Harness, rule: dict[str, Any]) -> None:
    response = await sb.client.post("/_sandbox/faults", json=rule)

    assert response.status_code == 422
    assert response.json()["error"] == "invalid fault rules"


async def test_faulted_requests_are_logged(sb: Harness) -> None:
    await _set(sb, {"path_prefix": ONE, "status": 429, "times": 1})
    await sb.api("GET", ONE)

    log = (await sb.client.get("/_sandbox/requests")).json()

    assert [(entry["path"], entry["status"], entry["fault_id"]) for entry in log["requests"]] == [
        ("/oauth/v2/token", 200, None),
        (ONE, 429, 1),
    ]


def test_fault_plan_tries_rules_in_order_and_counts_firings() -> None:
    plan = FaultPlan(seed=0)
    plan.set_rules([FaultRule(method="GET", status=429, times=1), FaultRule(status=500)])

    decisions = [plan.decide("GET", "/crm/v7/Appointments__s") for _ in range(2)]
    control = plan.decide("GET", "/_sandbox/requests")

    assert [decision.status if decision else None for decision in decisions] == [429, 500]
    assert control is None
    assert [(rule["fired"], rule["remaining"]) for rule in plan.snapshot()] == [(1, 0), (1, None)]
