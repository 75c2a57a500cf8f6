"""ZohoClient.field_names: GET /crm/v7/settings/fields?module=..., its errors, and the sandbox's answer."""

from __future__ import annotations

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.errors import CrmAuthError, CrmRejectedError, CrmTransientError
from workers.sources.zoho import APPOINTMENT_FIELDS


def client(redis: ArqRedis, http: httpx.AsyncClient, base: str = "https://api.example") -> ZohoClient:
    config = SandboxConfig()
    tokens = ZohoTokens(
        redis,
        http,
        accounts_url=base,
        client_id=config.client_id,
        client_secret=SecretStr(config.client_secret),
        refresh_token=SecretStr(config.refresh_token),
    )
    return ZohoClient(http, api_domain=base, tokens=tokens)


def mock(answer: httpx.Response, seen: list[httpx.Request]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t1", "expires_in": 3600})
        seen.append(request)
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_the_api_names_of_every_field(redis: ArqRedis) -> None:
    seen: list[httpx.Request] = []
    body = {"fields": [{"api_name": "Appointment_Name", "custom_field": False}, {"api_name": "Visit_Priority"}, {}]}
    names = await client(redis, mock(httpx.Response(200, json=body), seen)).field_names("Appointments__s")

    assert names == {"Appointment_Name", "Visit_Priority"}
    [request] = seen
    assert str(request.url) == "https://api.example/crm/v7/settings/fields?module=Appointments__s"
    assert request.headers["authorization"] == "Zoho-oauthtoken t1"


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (httpx.Response(401, json={"code": "OAUTH_SCOPE_MISMATCH", "message": "m"}), CrmAuthError, None),
        (httpx.Response(400, json={"code": "INVALID_MODULE", "message": "m", "details": {}}), CrmRejectedError, None),
        (httpx.Response(500, text="oops"), CrmTransientError, "HTTP_500"),
        (httpx.Response(200, json={"data": []}), CrmTransientError, "BAD_RESPONSE"),
    ],
)
async def test_errors_become_ours(
    redis: ArqRedis, answer: httpx.Response, error: type[Exception], code: str | None
) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(error) as raised:
        await client(redis, mock(answer, seen)).field_names("Appointments__s")
    expected = code or answer.json()["code"]
    assert getattr(raised.value, "code", None) == expected
    assert len(seen) == 1  # a scope mismatch is not cured by a new token: no second try


async def test_no_content_is_no_fields(redis: ArqRedis) -> None:
    assert await client(redis, mock(httpx.Response(204), [])).field_names("Appointments__s") == frozenset()


async def test_the_sandboxs_list_with_a_custom_field(redis: ArqRedis) -> None:
    app = create_sandbox(SandboxConfig(custom_fields=("zoho:Appointments__s:Visit_Priority",)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        names = await client(redis, http, "http://sandbox").field_names("Appointments__s")

    assert "Visit_Priority" in names
    assert names - {"Visit_Priority"} <= APPOINTMENT_FIELDS
