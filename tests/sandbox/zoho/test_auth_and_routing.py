"""Every /crm/ path needs a valid Zoho-oauthtoken; then unknown modules, paths and methods answer like Zoho."""

from __future__ import annotations

import pytest

from tests.sandbox.harness import APPOINTMENTS, HISTORY, SCHEDULED, Harness, error

INVALID_TOKEN = error("INVALID_TOKEN", "invalid oauth token")
INVALID_URL = error("INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one")
INVALID_METHOD = error("INVALID_REQUEST_METHOD", "The http request method type is not a valid one")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Zoho-oauthtoken 1000.0123456789abcdef.0123456789abcdef"}, {"Authorization": ""}],
    ids=["missing", "unknown", "empty"],
)
async def test_bad_or_missing_token_is_401(sb: Harness, headers: dict[str, str]) -> None:
    response = await sb.client.get(f"{APPOINTMENTS}/{SCHEDULED}", headers=headers)

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


async def test_only_the_zoho_oauthtoken_scheme_is_accepted(sb: Harness) -> None:
    headers = {"Authorization": f"Bearer {await sb.new_token()}"}

    response = await sb.client.get(f"{APPOINTMENTS}/{SCHEDULED}", headers=headers)

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


async def test_auth_is_checked_before_routing(sb: Harness) -> None:
    response = await sb.client.get("/crm/v7/no/such/path/here")

    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


async def test_unknown_path_is_invalid_url_pattern(sb: Harness) -> None:
    response = await sb.api("GET", "/crm/v7/no/such/path/here")

    assert response.status_code == 404
    assert response.json() == INVALID_URL


async def test_unknown_api_version_is_invalid_url_pattern(sb: Harness) -> None:
    response = await sb.api("GET", f"/crm/v99/Appointments__s/{SCHEDULED}")

    assert response.status_code == 404
    assert response.json() == INVALID_URL


async def test_v8_is_served_too(sb: Harness) -> None:
    response = await sb.api("GET", f"/crm/v8/Appointments__s/{SCHEDULED}")

    assert response.status_code == 200


async def test_unknown_module_is_invalid_module(sb: Harness) -> None:
    response = await sb.api("GET", "/crm/v7/Leads", params={"fields": "Last_Name"})

    assert response.status_code == 400
    assert response.json() == error(
        "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0}
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", APPOINTMENTS),
        ("DELETE", APPOINTMENTS),
        ("PUT", HISTORY),
        ("PATCH", HISTORY),
        ("DELETE", HISTORY),
        ("POST", f"{APPOINTMENTS}/{SCHEDULED}"),
        ("DELETE", f"{HISTORY}/5545974000003000001"),
        ("POST", f"{APPOINTMENTS}/{SCHEDULED}/Appointments_Rescheduled_History__s"),
    ],
)
async def test_wrong_method_is_invalid_request_method(sb: Harness, method: str, path: str) -> None:
    response = await sb.api(method, path, json={"data": [{}]})

    assert response.status_code == 400
    assert response.json() == INVALID_METHOD
