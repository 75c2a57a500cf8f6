"""Zoho scopes in the sandbox: calls outside the granted scopes answer 401 OAUTH_SCOPE_MISMATCH; by default all pass."""

from __future__ import annotations

import pytest

from sandbox.config import SandboxConfig
from sandbox.zoho.scopes import allowed, needed_scope, parse_scopes
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import APPOINTMENTS, HISTORY, SCHEDULED, Harness

READ = "ZohoCRM.modules.appointments.READ"
HISTORY_ALL = "ZohoCRM.modules.appointments_rescheduled_history.ALL"


def test_each_route_needs_the_scope_of_its_module_and_operation() -> None:
    assert needed_scope("module", {"module": "Appointments__s"}, "GET") == READ
    assert needed_scope("record", {"module": "Appointments__s"}, "PUT") == "ZohoCRM.modules.appointments.UPDATE"
    assert (
        needed_scope("module", {"module": "Appointments_Rescheduled_History__s"}, "POST")
        == "ZohoCRM.modules.appointments_rescheduled_history.CREATE"
    )
    related = {"module": "Appointments__s", "related": "Appointments_Rescheduled_History__s"}
    assert needed_scope("related", related, "GET") == "ZohoCRM.modules.appointments_rescheduled_history.READ"
    assert needed_scope("watch", {}, "PATCH") == "ZohoCRM.notifications.UPDATE"
    assert needed_scope("module", {"module": "Leads"}, "GET") is None


def test_all_write_and_modules_all_cover_operations() -> None:
    assert allowed("ZohoCRM.notifications.CREATE", {"ZohoCRM.notifications.WRITE"})
    assert allowed("ZohoCRM.notifications.READ", {"zohocrm.notifications.all"})
    assert not allowed("ZohoCRM.notifications.READ", {"ZohoCRM.notifications.WRITE"})
    assert allowed(READ, {"ZohoCRM.modules.ALL"})
    assert not allowed("ZohoCRM.modules.appointments.UPDATE", {READ})
    assert parse_scopes(f"{READ}, ZohoCRM.notifications.ALL") == {READ, "ZohoCRM.notifications.ALL"}


async def test_every_scope_is_granted_by_default(sb: Harness) -> None:
    calls: list[tuple[str, str, dict[str, list[str]] | None]] = [
        ("GET", f"{APPOINTMENTS}/{SCHEDULED}", None),
        ("GET", "/crm/v7/actions/watch", None),
        ("POST", HISTORY, {"data": []}),
    ]
    for method, path, body in calls:
        response = await sb.api(method, path, json=body)
        assert response.status_code != 401, (method, path, response.text)


async def test_a_call_outside_the_granted_scopes_answers_oauth_scope_mismatch(make: MakeSandbox) -> None:
    sb = await make(zoho_scopes=frozenset({READ}))

    read = await sb.api("GET", f"{APPOINTMENTS}/{SCHEDULED}")
    watch = await sb.api("GET", "/crm/v7/actions/watch")
    write = await sb.api("POST", HISTORY, json={"data": []})

    assert read.status_code == 200
    for refused in (watch, write):
        assert refused.status_code == 401
        assert refused.json() == {
            "code": "OAUTH_SCOPE_MISMATCH",
            "details": {},
            "message": "invalid oauth scope to access this URL",
            "status": "error",
        }


async def test_the_scope_is_checked_before_the_body(make: MakeSandbox) -> None:
    granted = await make(zoho_scopes=frozenset({READ, HISTORY_ALL}))
    refused = await make(zoho_scopes=frozenset({READ}))

    assert (await granted.api("POST", HISTORY, json={"data": []})).json()["code"] == "MANDATORY_NOT_FOUND"
    assert (await refused.api("POST", HISTORY, json={"data": []})).json()["code"] == "OAUTH_SCOPE_MISMATCH"


async def test_other_credentials_refuse_the_default_refresh_form(make: MakeSandbox) -> None:
    config = SandboxConfig(client_secret="another-secret")
    sb = await make(client_secret=config.client_secret)

    answer = await sb.client.post("/oauth/v2/token", data=SandboxConfig().refresh_form())
    ok = await sb.client.post("/oauth/v2/token", data=config.refresh_form())

    assert answer.json() == {"error": "invalid_client"}
    assert "access_token" in ok.json()


@pytest.mark.parametrize("field", ["client_id", "client_secret", "refresh_token"])
async def test_empty_credentials_are_refused(make: MakeSandbox, field: str) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        await make(**{field: ""})
