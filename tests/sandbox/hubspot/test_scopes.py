"""HubSpot scopes in the sandbox: calls outside the granted scopes answer 403 MISSING_SCOPES; by default all pass."""

from __future__ import annotations

from sandbox.hubspot.scopes import needed_scopes, parse_scopes
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import HS_APPOINTMENTS, HS_NOTES, HS_SCHEDULED, Harness

READ = "crm.objects.appointments.read"
NOTES_READ, NOTES_WRITE = "crm.objects.contacts.read", "crm.objects.contacts.write"


def test_reads_need_read_scopes_and_writes_the_write_scope_of_the_first_type() -> None:
    assert needed_scopes("GET", f"{HS_APPOINTMENTS}/1") == (READ,)
    assert needed_scopes("POST", f"{HS_APPOINTMENTS}/search") == (READ,)
    assert needed_scopes("POST", f"{HS_NOTES}/batch/read") == (NOTES_READ,)
    assert needed_scopes("POST", HS_NOTES) == (NOTES_WRITE,)
    assert needed_scopes("PATCH", "/crm/v3/objects/0-421/1") == ("crm.objects.appointments.write",)
    assert needed_scopes("GET", "/crm/associations/2026-03/notes/appointments/labels") == (NOTES_READ, READ)
    assert needed_scopes("PUT", f"{HS_NOTES}/1/associations/appointments/2/921") == (NOTES_WRITE, READ)
    assert parse_scopes(f"{READ} {NOTES_WRITE},{NOTES_READ}") == {READ, NOTES_WRITE, NOTES_READ}


async def test_every_scope_is_granted_by_default(sb: Harness) -> None:
    assert (await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}")).status_code == 200
    assert (await sb.hs("POST", HS_NOTES, json=[])).status_code == 400


async def test_a_call_outside_the_granted_scopes_answers_missing_scopes(make: MakeSandbox) -> None:
    sb = await make(hubspot_scopes=frozenset({READ}))

    read = await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}")
    write = await sb.hs("POST", HS_NOTES, json=[])

    assert read.status_code == 200
    assert write.status_code == 403
    body = write.json()
    assert body["status"] == "error"
    assert body["category"] == "MISSING_SCOPES"
    assert body["message"].startswith("This app hasn't been granted all required scopes to make this call.")
    assert body["errors"][0]["context"] == {"requiredGranularScopes": [NOTES_WRITE]}
    assert "X-HubSpot-RateLimit-Remaining" in write.headers


async def test_search_without_the_read_scope_is_refused(make: MakeSandbox) -> None:
    sb = await make(hubspot_scopes=frozenset({NOTES_WRITE}))

    answer = await sb.hs("POST", f"{HS_APPOINTMENTS}/search", json={})

    assert answer.status_code == 403
    assert answer.json()["errors"][0]["context"] == {"requiredGranularScopes": [READ]}


async def test_another_token_is_refused(make: MakeSandbox) -> None:
    sb = await make(hubspot_access_token="pat-na1-other")

    assert (await sb.hs("GET", f"{HS_APPOINTMENTS}/{HS_SCHEDULED}")).status_code == 401
    answer = await sb.client.get(f"{HS_APPOINTMENTS}/{HS_SCHEDULED}", headers={"Authorization": "Bearer pat-na1-other"})
    assert answer.status_code == 200
