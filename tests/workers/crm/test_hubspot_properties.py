"""HubSpotClient.property_names: GET /crm/properties/2026-03/{type}, its errors, and the sandbox's answer."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from workers.crm.hubspot import HubSpotClient
from workers.errors import CrmAuthError, CrmRateLimitedError, CrmRejectedError, CrmTransientError
from workers.sources.hubspot import APPOINTMENT_PROPERTIES


def client(answer: httpx.Response, seen: list[httpx.Request]) -> HubSpotClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return HubSpotClient(http, api_base="https://api.example", token=SecretStr("pat"))


async def test_the_names_of_every_property() -> None:
    seen: list[httpx.Request] = []
    body = {"results": [{"name": "hs_appointment_start", "hubspotDefined": True}, {"name": "visit_priority"}, 3]}

    names = await client(httpx.Response(200, json=body), seen).property_names("appointments")

    assert names == {"hs_appointment_start", "visit_priority"}
    [request] = seen
    assert str(request.url) == "https://api.example/crm/properties/2026-03/appointments"
    assert request.headers["authorization"] == "Bearer pat"


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (httpx.Response(401, json={"category": "INVALID_AUTHENTICATION"}), CrmAuthError, "INVALID_AUTHENTICATION"),
        (httpx.Response(403, json={"category": "MISSING_SCOPES"}), CrmAuthError, "MISSING_SCOPES"),
        (httpx.Response(400, json={"category": "VALIDATION_ERROR"}), CrmRejectedError, "VALIDATION_ERROR"),
        (httpx.Response(429, json={"policyName": "TEN_SECONDLY_ROLLING"}), CrmRateLimitedError, "TEN_SECONDLY_ROLLING"),
        (httpx.Response(200, json={"data": []}), CrmTransientError, "BAD_RESPONSE"),
    ],
)
async def test_errors_become_ours(answer: httpx.Response, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as raised:
        await client(answer, []).property_names("appointments")
    assert getattr(raised.value, "code", None) == code


async def test_the_sandboxs_list_with_a_custom_property() -> None:
    app = create_sandbox(SandboxConfig(custom_fields=("hubspot:appointments:visit_priority",)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        hubspot = HubSpotClient(http, api_base="http://sandbox", token=SecretStr("sandbox-hubspot-token"))
        names = await hubspot.property_names("appointments")

    assert names == APPOINTMENT_PROPERTIES | {"visit_priority"}
