"""The HubSpot probes against the sandbox app (in process), with all scopes, fewer scopes, or another token."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from crmflow.doctor.findings import Finding
from crmflow.doctor.hubspot_probe import check_hubspot, required_scopes
from sandbox.app import create_app
from sandbox.config import SandboxConfig

TOKEN = SecretStr(SandboxConfig().hubspot_access_token)


async def _probe(config: SandboxConfig, token: SecretStr = TOKEN) -> list[Finding]:
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport) as http:
        return await check_hubspot(http, api_base="http://sandbox", token=token)


async def test_a_token_with_every_scope_passes() -> None:
    found = await _probe(SandboxConfig())

    assert [(f.check, f.status) for f in found] == [
        ("hubspot read appointments", "ok"),
        ("hubspot look up the note-to-appointment association", "ok"),
        ("hubspot write notes", "ok"),
    ]


async def test_a_missing_scope_is_named() -> None:
    granted = frozenset({"crm.objects.appointments.read", "crm.objects.contacts.read"})
    found = await _probe(SandboxConfig(hubspot_scopes=granted))

    [missing] = [f for f in found if f.status == "fail"]
    assert missing.check == "hubspot write notes"
    assert missing.setting == "HUBSPOT_ACCESS_TOKEN"
    assert "crm.objects.contacts.write" in missing.message and "MISSING_SCOPES" in missing.message


async def test_another_token_is_named_once() -> None:
    found = await _probe(SandboxConfig(), SecretStr("pat-na1-stale"))

    assert [(f.status, f.setting) for f in found] == [("fail", "HUBSPOT_ACCESS_TOKEN")]
    assert "pat-na1-stale" not in repr(found)


async def test_an_unreachable_api_base_is_named() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        found = await check_hubspot(http, api_base="https://api.hubapi.com", token=TOKEN)

    assert [(f.status, f.setting) for f in found] == [("fail", "HUBSPOT_API_BASE")]


def test_scopes_named_in_a_missing_scopes_body() -> None:
    body = {"errors": [{"message": "m", "context": {"requiredGranularScopes": ["a", "b"], "other": "x"}}]}

    assert required_scopes(body) == ["a", "b"]
    assert required_scopes({"category": "MISSING_SCOPES"}) == []
    assert required_scopes(None) == []
