"""The Zoho probes against the sandbox app (in process) and, for answers the sandbox does not give, MockTransport."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
from arq.connections import ArqRedis
from pydantic import SecretStr

from crmflow.doctor.findings import Finding
from crmflow.doctor.zoho_probe import Grant, api_domain_findings, check_zoho, granted_scope_findings, read_grant
from sandbox.app import create_app
from sandbox.config import SandboxConfig
from workers import keys
from workers.crm.zoho_auth import REFRESH_BUDGET, REFRESH_WINDOW_S, ZohoTokens

BASE = "http://sandbox"
DEFAULT = SandboxConfig()


async def _probe(
    app_config: SandboxConfig | None = None,
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **settings: Any,
) -> tuple[list[Finding], Any]:
    transport: httpx.AsyncBaseTransport = (
        httpx.MockTransport(handler)
        if handler is not None
        else httpx.ASGITransport(app=create_app(app_config or DEFAULT))
    )
    given: dict[str, Any] = {
        "accounts_url": BASE,
        "api_domain": BASE,
        "client_id": DEFAULT.client_id,
        "client_secret": SecretStr(DEFAULT.client_secret),
        "refresh_token": SecretStr(DEFAULT.refresh_token),
    } | settings
    async with httpx.AsyncClient(transport=transport) as http:
        return await check_zoho(http, **given)


def _statuses(findings: list[Finding]) -> dict[str, str]:
    return {f.check: f.status for f in findings}


async def test_matching_settings_pass_every_scope_and_read_the_channels() -> None:
    found, watch = await _probe(SandboxConfig(notify_url="https://crmflow.example.com/webhooks/zoho"))

    assert {f.status for f in found} == {"ok"}
    assert len(found) == 8  # the grant and seven scopes
    assert isinstance(watch, dict) and watch["watch"][0]["channel_id"] == DEFAULT.channel_id


async def test_a_wrong_secret_names_the_client_settings_never_the_value() -> None:
    found, watch = await _probe(client_secret=SecretStr("not-the-secret"))

    assert found[0].status == "fail"
    assert found[0].setting == "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET"
    assert "invalid_client" in found[0].message
    assert found[1].status == "skip"
    assert "not-the-secret" not in repr(found)
    assert watch is None


async def test_a_wrong_refresh_token_names_it() -> None:
    found, _ = await _probe(refresh_token=SecretStr("revoked"))

    assert (found[0].status, found[0].setting) == ("fail", "ZOHO_REFRESH_TOKEN")


async def test_each_missing_scope_is_named() -> None:
    granted = frozenset({"ZohoCRM.modules.appointments.READ", "ZohoCRM.notifications.READ"})
    found, _ = await _probe(SandboxConfig(zoho_scopes=granted))

    failed = {f.check: f for f in found if f.status == "fail"}
    assert sorted(failed) == [
        "zoho scope ZohoCRM.modules.appointments_rescheduled_history.CREATE",
        "zoho scope ZohoCRM.modules.appointments_rescheduled_history.READ",
        "zoho scope ZohoCRM.notifications.CREATE",
        "zoho scope ZohoCRM.notifications.UPDATE",
    ]
    assert all(f.setting == "ZOHO_REFRESH_TOKEN" and "OAUTH_SCOPE_MISMATCH" in f.message for f in failed.values())
    assert _statuses(found)["zoho scope ZohoCRM.modules.appointments.READ"] == "ok"


async def test_an_unreachable_accounts_server_names_zoho_accounts_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    found, _ = await _probe(handler=refuse)

    assert [(f.status, f.setting) for f in found] == [("fail", "ZOHO_ACCOUNTS_URL"), ("skip", "")]


async def test_an_api_domain_of_another_data_centre_is_named() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "1000.a.b", "api_domain": "https://www.zohoapis.eu"})
        return httpx.Response(
            401, json={"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}
        )

    found, _ = await _probe(handler=answer, api_domain="https://www.zohoapis.com")

    assert [(f.status, f.setting) for f in found] == [
        ("ok", "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN"),
        ("warn", "ZOHO_API_DOMAIN"),
        ("fail", "ZOHO_API_DOMAIN"),
    ]


def _refused(status: int, body: Any) -> Finding:
    grant = read_grant(status, body)
    assert isinstance(grant, Finding)
    return grant


def test_token_answers() -> None:
    throttled = {"error": "Access Denied", "error_description": "too many", "status": "failure"}
    grant = read_grant(200, {"access_token": "t", "scope": "a b", "api_domain": "https://www.zohoapis.com"})
    assert isinstance(grant, Grant) and grant.scope == "a b"
    assert _refused(400, throttled).status == "warn"
    assert _refused(404, None).setting == "ZOHO_ACCOUNTS_URL"
    assert _refused(200, {"error": "invalid_client_secret"}).setting == "ZOHO_CLIENT_SECRET"
    assert _refused(200, {}).setting == "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN"
    assert _refused(503, {}).status == "warn"


def test_a_scope_list_in_the_token_answer_is_checked_when_there_is_one() -> None:
    full = (
        "ZohoCRM.modules.appointments.READ,ZohoCRM.modules.appointments_rescheduled_history.ALL,"
        "ZohoCRM.notifications.ALL"
    )
    assert granted_scope_findings(None) == []
    assert granted_scope_findings(full) == []
    assert granted_scope_findings("ZohoCRM.modules.ALL ZohoCRM.notifications.WRITE ZohoCRM.notifications.READ") == []
    missing = granted_scope_findings("ZohoCRM.modules.appointments.READ ZohoCRM.notifications.ALL")
    assert [f.check for f in missing] == [
        "zoho scope ZohoCRM.modules.appointments_rescheduled_history.READ",
        "zoho scope ZohoCRM.modules.appointments_rescheduled_history.CREATE",
    ]


async def test_with_a_scope_list_a_write_scope_hidden_by_body_checks_is_still_found() -> None:
    """If Zoho checked the body before the scope (UNCONFIRMED), the empty writes would pass; the list catches it."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            body = {"access_token": "1000.a.b", "scope": "ZohoCRM.modules.appointments.READ,ZohoCRM.notifications.ALL"}
            return httpx.Response(200, json=body)
        if request.method == "POST":
            return httpx.Response(400, content=orjson.dumps({"code": "MANDATORY_NOT_FOUND", "status": "error"}))
        return httpx.Response(204)

    found, _ = await _probe(handler=answer)

    failed = [f.check for f in found if f.status == "fail"]
    assert "zoho scope ZohoCRM.modules.appointments_rescheduled_history.CREATE" in failed


def test_the_api_domain_compares_by_origin() -> None:
    grant = Grant("t", "https://www.zohoapis.com/", None)

    assert [f.status for f in api_domain_findings(grant, "https://www.zohoapis.com:443")] == ["ok"]
    assert [f.status for f in api_domain_findings(grant, "https://www.zohoapis.eu")] == ["ok", "warn"]
    assert [f.status for f in api_domain_findings(Grant("t", "not a url ::", None), BASE)] == ["ok", "warn"]


class CountingGrants(httpx.AsyncBaseTransport):
    """The sandbox app, counting the refresh grants sent to it."""

    def __init__(self) -> None:
        self.app = httpx.ASGITransport(app=create_app(DEFAULT))
        self.grants = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.grants += request.url.path == "/oauth/v2/token"
        return await self.app.handle_async_request(request)


async def _shared(redis: ArqRedis, transport: CountingGrants, secret: str = DEFAULT.client_secret) -> list[Finding]:
    async with httpx.AsyncClient(transport=transport) as http:
        found, _ = await check_zoho(
            http,
            accounts_url=BASE,
            api_domain=BASE,
            client_id=DEFAULT.client_id,
            client_secret=SecretStr(secret),
            refresh_token=SecretStr(DEFAULT.refresh_token),
            redis=redis,
        )
    return found


def _workers_tokens(redis: ArqRedis, http: httpx.AsyncClient) -> ZohoTokens:
    return ZohoTokens(
        redis,
        http,
        accounts_url=BASE,
        client_id=DEFAULT.client_id,
        client_secret=SecretStr(DEFAULT.client_secret),
        refresh_token=SecretStr(DEFAULT.refresh_token),
    )


async def test_with_redis_the_workers_token_is_shared_and_a_refresh_spends_their_budget(redis: ArqRedis) -> None:
    transport = CountingGrants()

    first = await _shared(redis, transport)
    second = await _shared(redis, transport)
    async with httpx.AsyncClient(transport=transport) as http:
        await _workers_tokens(redis, http).get()

    assert {f.status for f in first + second} == {"ok"}
    assert transport.grants == 1  # the doctor's one refresh; the second run and the workers reuse its token
    assert second[0].message.startswith("the workers' access token for these credentials is cached")
    (budget,) = await redis.keys("crmflow:zoho:token:*:refreshes")
    assert await redis.get(budget) == b"1"


async def test_with_redis_a_wrong_secret_is_found_while_the_workers_token_is_cached(redis: ArqRedis) -> None:
    transport = CountingGrants()
    async with httpx.AsyncClient(transport=transport) as http:
        await _workers_tokens(redis, http).get()

    found = await _shared(redis, transport, secret="not-the-secret")

    assert (found[0].status, found[0].setting) == ("fail", "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET")
    assert "invalid_client" in found[0].message and "not-the-secret" not in repr(found)
    assert transport.grants == 2


async def test_with_the_workers_budget_spent_and_no_token_cached_the_grant_is_not_checked(redis: ArqRedis) -> None:
    transport = CountingGrants()
    async with httpx.AsyncClient(transport=transport) as http:
        budget = _workers_tokens(redis, http).account
    await redis.set(keys.zoho_refreshes(budget), REFRESH_BUDGET, ex=REFRESH_WINDOW_S)

    found = await _shared(redis, transport)

    assert [f.status for f in found] == ["warn", "skip"]
    assert "refresh budget" in found[0].message and found[0].fix.startswith("run again in ")
    assert transport.grants == 0


async def test_with_redis_refusals_and_strangers_are_named_as_without(redis: ArqRedis) -> None:
    """Through the workers' token code, Zoho's answers still name the setting at fault."""

    async def answer(response: httpx.Response) -> Finding:
        async with httpx.AsyncClient(transport=httpx.MockTransport(lambda request: response)) as http:
            found, _ = await check_zoho(
                http,
                accounts_url=BASE,
                api_domain=BASE,
                client_id="id",
                client_secret=SecretStr("secret"),
                refresh_token=SecretStr("token"),
                redis=redis,
            )
        return found[0]

    revoked = await answer(httpx.Response(200, json={"error": "invalid_code"}))
    stranger = await answer(httpx.Response(404, text="<html>not found</html>"))
    down = await answer(httpx.Response(503))

    assert (revoked.status, revoked.setting) == ("fail", "ZOHO_REFRESH_TOKEN")
    assert (stranger.status, stranger.setting) == ("fail", "ZOHO_ACCOUNTS_URL") and "HTTP 404" in stranger.message
    assert (down.status, down.message) == ("warn", "could not be checked: Zoho's accounts server answered HTTP 503")


async def test_a_token_that_may_not_read_field_lists_is_a_warning_for_custom_field_rules_only() -> None:
    scopes = frozenset({"ZohoCRM.modules.ALL", "ZohoCRM.notifications.ALL"})
    found, _ = await _probe(SandboxConfig(zoho_scopes=scopes))

    fields = next(f for f in found if f.check == "zoho scope ZohoCRM.settings.fields.READ")
    assert (fields.status, fields.setting) == ("warn", "ZOHO_REFRESH_TOKEN")
    assert "rules that name custom fields" in fields.message
    assert {f.status for f in found if f is not fields} == {"ok"}
