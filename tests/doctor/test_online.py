"""All online checks together, against the sandbox app in process and the test Redis; PUBLIC_BASE_URL's scheme."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from crmflow.doctor.findings import Finding, failed
from crmflow.doctor.online import online_findings, public_url_scheme_findings
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from workers.config import WorkerConfig

BASE = "http://sandbox"
ENV = {
    "ZOHO_API_DOMAIN": BASE,
    "ZOHO_ACCOUNTS_URL": BASE,
    "ZOHO_CLIENT_ID": "sandbox-client-id",
    "ZOHO_CLIENT_SECRET": "sandbox-client-secret",
    "ZOHO_REFRESH_TOKEN": "sandbox-refresh-token",
    "HUBSPOT_API_BASE": BASE,
    "HUBSPOT_ACCESS_TOKEN": "sandbox-hubspot-token",
    "ZOHO_NOTIFY_TOKEN": "sandbox-notify-token",
    "HUBSPOT_CLIENT_SECRET": "sandbox-hubspot-client-secret",
    "PUBLIC_BASE_URL": "http://receiver:8000",
    "ZOHO_CHANNEL_IDS": "1000000068001",
}


async def _online(redis: Redis, config: SandboxConfig, **env: str) -> list[Finding]:
    settings = ENV | env
    worker = WorkerConfig.model_validate(settings)
    transport = httpx.ASGITransport(app=create_app(config))
    async with httpx.AsyncClient(transport=transport) as http:
        return await online_findings(
            settings, redis=redis, redis_where="test", worker=worker, http=http, now=datetime.now(UTC)
        )


async def test_the_compose_sandbox_profile_passes_with_warnings_only(redis: Redis) -> None:
    """As docker-compose's sandbox profile wires it: http://receiver:8000, API bases at the sandbox."""
    config = SandboxConfig(notify_url="http://receiver:8000/webhooks/zoho")

    found = await _online(redis, config)

    assert not failed(found), [f for f in found if f.status == "fail"]
    assert {f.check for f in found if f.status == "warn"} <= {"public URL", "zoho channel 1000000068001"}
    assert any(f.check == "zoho channel 1000000068001" for f in found)


async def test_a_sandbox_with_fewer_scopes_fails_naming_them(redis: Redis) -> None:
    config = SandboxConfig(
        zoho_scopes=frozenset({"ZohoCRM.modules.appointments.ALL", "ZohoCRM.notifications.ALL"}),
        hubspot_scopes=frozenset({"crm.objects.contacts.write", "crm.objects.contacts.read"}),
    )

    found = await _online(redis, config)

    failing = {f.check for f in found if f.status == "fail"}
    assert "zoho scope ZohoCRM.modules.appointments_rescheduled_history.CREATE" in failing
    assert "hubspot read appointments" in failing


def test_public_base_url_http_fails_against_the_real_crms_and_warns_against_the_sandbox() -> None:
    sandbox = {**ENV}
    real = {k: v for k, v in ENV.items() if k not in ("ZOHO_API_DOMAIN", "ZOHO_ACCOUNTS_URL", "HUBSPOT_API_BASE")}

    assert [f.status for f in public_url_scheme_findings(sandbox)] == ["warn"]
    assert [(f.status, f.setting) for f in public_url_scheme_findings(real)] == [("fail", "PUBLIC_BASE_URL")]
    assert [f.status for f in public_url_scheme_findings({**real, "PUBLIC_BASE_URL": "https://x.example"})] == ["ok"]
    assert [f.status for f in public_url_scheme_findings({})] == ["skip"]
    invalid = public_url_scheme_findings({**ENV, "PUBLIC_BASE_URL": "http://[bad"})
    assert [(f.status, f.message) for f in invalid] == [("skip", "not checked: it is not a valid URL")]
