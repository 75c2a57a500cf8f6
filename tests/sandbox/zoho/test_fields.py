"""Zoho's field metadata in the sandbox: GET /crm/v7/settings/fields?module=Appointments__s, custom fields, errors."""

from __future__ import annotations

from sandbox.zoho.fields import BUILT_IN_FIELDS
from sandbox.zoho.seed import blank_appointment
from tests.sandbox.conftest import MakeSandbox
from tests.sandbox.harness import START, Harness, error

FIELDS = "/crm/v7/settings/fields"


async def test_the_field_list_has_every_field_the_records_have(sb: Harness) -> None:
    answer = await sb.api("GET", FIELDS, params={"module": "Appointments__s"})

    assert answer.status_code == 200
    fields = answer.json()["fields"]
    names = [field["api_name"] for field in fields]
    assert set(names) == BUILT_IN_FIELDS
    assert {n for n in blank_appointment("1", START) if not n.startswith("$") and n != "id"} == BUILT_IN_FIELDS
    start = next(field for field in fields if field["api_name"] == "Appointment_Start_Time")
    assert {key: start[key] for key in ("data_type", "json_type", "custom_field", "type", "visible")} == {
        "data_type": "datetime",
        "json_type": "string",
        "custom_field": False,
        "type": "used",
        "visible": True,
    }
    assert len({field["id"] for field in fields}) == len(fields)


async def test_custom_fields_from_the_config_and_the_control_api_follow_the_built_in_ones(make: MakeSandbox) -> None:
    sb = await make(custom_fields=("zoho:Appointments__s:Visit_Priority:picklist",))
    added = await sb.client.post(
        "/_sandbox/fields/zoho/Appointments__s", json=[{"name": "Gate_Code", "label": "Gate code"}]
    )
    assert added.status_code == 200
    assert added.json()["custom_fields"] == [
        {"name": "Visit_Priority", "type": "picklist", "label": "Visit Priority"},
        {"name": "Gate_Code", "type": "text", "label": "Gate code"},
    ]

    fields = (await sb.api("GET", FIELDS, params={"module": "Appointments__s"})).json()["fields"]

    custom = [(f["api_name"], f["data_type"], f["field_label"]) for f in fields if f["custom_field"]]
    assert custom == [("Visit_Priority", "picklist", "Visit Priority"), ("Gate_Code", "text", "Gate code")]
    assert (await sb.client.get("/_sandbox/fields")).json() == {
        "zoho": {"Appointments__s": added.json()["custom_fields"]}
    }

    # A reset keeps the configured field and drops the one added at run time.
    await sb.client.post("/_sandbox/reset")
    sb.drop_token()  # the reset revoked it
    fields = (await sb.api("GET", FIELDS, params={"module": "Appointments__s"})).json()["fields"]
    assert [f["api_name"] for f in fields if f["custom_field"]] == ["Visit_Priority"]
    await sb.client.delete("/_sandbox/fields/zoho/Appointments__s")
    fields = (await sb.api("GET", FIELDS, params={"module": "Appointments__s"})).json()["fields"]
    assert not any(f["custom_field"] for f in fields)


async def test_bad_custom_fields_are_refused_by_the_control_api(sb: Harness) -> None:
    for path, body in [
        ("/_sandbox/fields/zoho/Appointments__s", {"name": "Status"}),
        ("/_sandbox/fields/zoho/Appointments__s", {"name": "1st"}),
        ("/_sandbox/fields/zoho/Appointments__s", {"name": "Ok", "type": "rocket"}),
        ("/_sandbox/fields/zoho/Appointments__s", "not an object"),
        ("/_sandbox/fields/zoho/Leads", {"name": "Ok"}),
    ]:
        answer = await sb.client.post(path, json=body)
        assert answer.status_code == 400, (path, body)
        assert answer.json()["error"]
    assert (await sb.client.get("/_sandbox/fields")).json() == {}


async def test_a_missing_or_unknown_module_is_refused_as_zoho_does(sb: Harness) -> None:
    missing = await sb.api("GET", FIELDS)
    unknown = await sb.api("GET", FIELDS, params={"module": "Leads"})
    post = await sb.api("POST", FIELDS, params={"module": "Appointments__s"})

    assert (missing.status_code, missing.json()) == (
        400,
        error("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "module"}),
    )
    assert (unknown.status_code, unknown.json()["code"]) == (400, "INVALID_MODULE")
    assert (post.status_code, post.json()["code"]) == (400, "INVALID_REQUEST_METHOD")


async def test_the_field_list_needs_a_token_and_the_settings_fields_scope(make: MakeSandbox) -> None:
    sb = await make(zoho_scopes=frozenset({"ZohoCRM.modules.ALL"}))
    no_token = await sb.client.get(FIELDS, params={"module": "Appointments__s"})
    refused = await sb.api("GET", FIELDS, params={"module": "Appointments__s"})

    assert (no_token.status_code, no_token.json()["code"]) == (401, "INVALID_TOKEN")
    assert (refused.status_code, refused.json()["code"]) == (401, "OAUTH_SCOPE_MISMATCH")
    for granted in ("ZohoCRM.settings.fields.READ", "ZohoCRM.settings.fields.ALL", "ZohoCRM.settings.ALL"):
        sb = await make(zoho_scopes=frozenset({granted}))
        assert (await sb.api("GET", FIELDS, params={"module": "Appointments__s"})).status_code == 200, granted
