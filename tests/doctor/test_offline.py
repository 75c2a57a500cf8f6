"""The offline checks as pure functions of the settings as set, the refused settings and the rules."""

from __future__ import annotations

from crmflow.doctor.findings import Finding
from crmflow.doctor.offline import (
    hubspot_secret_findings,
    offline_findings,
    public_url_findings,
    role_findings,
    rules_findings,
    settings_findings,
    source_findings,
    upkeep_findings,
    url_findings,
    zoho_dc_findings,
)

ZOHO_WORKER = {"ZOHO_CLIENT_ID": "id", "ZOHO_CLIENT_SECRET": "zoho-secret-value", "ZOHO_REFRESH_TOKEN": "rt"}
BOTH = {
    **ZOHO_WORKER,
    "ZOHO_NOTIFY_TOKEN": "notify-token-value",
    "HUBSPOT_CLIENT_SECRET": "hubspot-secret-value",
    "HUBSPOT_ACCESS_TOKEN": "pat-na1-token-value",
    "PUBLIC_BASE_URL": "https://crmflow.example.com",
    "ZOHO_CHANNEL_IDS": "1000000068001",
}
SECRETS = ("zoho-secret-value", "notify-token-value", "hubspot-secret-value", "pat-na1-token-value")


def _no_values(findings: list[Finding]) -> None:
    text = repr(findings)
    assert not any(value in text for value in SECRETS)


def _fails(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status == "fail"]


def test_refused_settings_become_one_failure_each_naming_the_setting() -> None:
    found = settings_findings(
        "worker",
        [
            "ZOHO_API_DOMAIN: Input should be a valid URL, relative URL without a base",
            "ZOHO_CLIENT_ID, ZOHO_REFRESH_TOKEN: not set; Zoho needs all of ZOHO_CLIENT_ID, ...",
            "ZOHO_NOTIFY_TOKEN: Value error, must be 1 to 50 characters (Zoho's limit for a channel token)",
            "no source is configured: set ...",
        ],
    )

    assert [(f.status, f.setting) for f in found] == [
        ("fail", "ZOHO_API_DOMAIN"),
        ("fail", "ZOHO_CLIENT_ID, ZOHO_REFRESH_TOKEN"),
        ("fail", "ZOHO_NOTIFY_TOKEN"),
        ("fail", ""),
    ]
    assert found[1].fix == "set ZOHO_CLIENT_ID, ZOHO_REFRESH_TOKEN"
    assert found[2].message == "must be 1 to 50 characters (Zoho's limit for a channel token)"
    assert settings_findings("receiver", None)[0].status == "ok"


def test_each_source_on_or_off_per_role_and_why() -> None:
    found = source_findings({"ZOHO_NOTIFY_TOKEN": "t", **ZOHO_WORKER})
    messages = [f.message for f in found]

    assert "Zoho is on in the receiver (ZOHO_NOTIFY_TOKEN set)" in messages
    assert "Zoho is on in the worker (ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN set)" in messages
    assert "HubSpot is off in the receiver: HUBSPOT_CLIENT_SECRET not set" in messages
    assert "HubSpot is off in the worker: HUBSPOT_ACCESS_TOKEN not set" in messages
    assert _fails(found) == []


def test_a_source_on_in_the_receiver_but_off_in_the_workers_fails() -> None:
    found = source_findings({"ZOHO_NOTIFY_TOKEN": "t", "HUBSPOT_ACCESS_TOKEN": "x"})

    [zoho] = _fails(found)
    assert zoho.setting == "ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN"
    assert "dead letter" in zoho.message
    [hubspot] = [f for f in found if f.status == "warn"]
    assert hubspot.setting == "HUBSPOT_CLIENT_SECRET, PUBLIC_BASE_URL"
    assert "only sweeps" in hubspot.message


def test_public_base_url_must_be_the_base() -> None:
    [found] = public_url_findings({"PUBLIC_BASE_URL": "https://x.example/webhooks/hubspot"})

    assert (found.status, found.setting) == ("fail", "PUBLIC_BASE_URL")
    assert public_url_findings({"PUBLIC_BASE_URL": "https://x.example/crmflow"}) == []


def test_the_hubspot_secret_is_not_the_access_token() -> None:
    [pat] = hubspot_secret_findings({"HUBSPOT_CLIENT_SECRET": "pat-na1-abc"})
    [same] = hubspot_secret_findings({"HUBSPOT_CLIENT_SECRET": "abc", "HUBSPOT_ACCESS_TOKEN": "abc"})

    assert (pat.status, pat.setting) == ("fail", "HUBSPOT_CLIENT_SECRET")
    assert (same.status, same.setting) == ("fail", "HUBSPOT_CLIENT_SECRET, HUBSPOT_ACCESS_TOKEN")
    assert "abc" not in repr([pat, same])
    assert hubspot_secret_findings({"HUBSPOT_CLIENT_SECRET": "abc", "HUBSPOT_ACCESS_TOKEN": "pat-na1-x"}) == []


def test_zoho_urls_of_different_data_centres_fail() -> None:
    [found] = zoho_dc_findings({**ZOHO_WORKER, "ZOHO_ACCOUNTS_URL": "https://accounts.zoho.eu"})

    assert (found.status, found.setting) == ("fail", "ZOHO_API_DOMAIN, ZOHO_ACCOUNTS_URL")
    assert "US data centre" in found.message and "EU one" in found.message
    assert zoho_dc_findings({**ZOHO_WORKER, "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:8001"}) == []
    same = {"ZOHO_ACCOUNTS_URL": "https://accounts.zoho.eu", "ZOHO_API_DOMAIN": "https://www.zohoapis.eu"}
    assert zoho_dc_findings({**ZOHO_WORKER, **same}) == []


def test_channel_upkeep_on_or_off_and_why() -> None:
    assert [f.setting for f in upkeep_findings(ZOHO_WORKER)] == ["ZOHO_CHANNEL_IDS"]
    no_url = upkeep_findings({**ZOHO_WORKER, "ZOHO_CHANNEL_IDS": "1"})
    assert [(f.status, f.setting) for f in no_url] == [("warn", "PUBLIC_BASE_URL")]
    off = upkeep_findings({**BOTH, "ZOHO_CHANNEL_CHECK_S": "0"})
    assert [(f.status, f.setting) for f in off] == [("warn", "ZOHO_CHANNEL_CHECK_S")]
    [on] = upkeep_findings(BOTH)
    assert on.status == "ok"
    assert upkeep_findings({"HUBSPOT_ACCESS_TOKEN": "x"}) == []


def test_rules() -> None:
    [loaded] = rules_findings("rules/default.yaml", 2)
    problems = rules_findings("bad.yaml", ["bad.yaml: rule 'a': x", "bad.yaml: rule 'b': y"])

    assert (loaded.status, loaded.message) == ("ok", "2 rules from rules/default.yaml")
    assert [(f.status, f.setting, f.message) for f in problems] == [
        ("fail", "RULES_PATH", "bad.yaml: rule 'a': x"),
        ("fail", "RULES_PATH", "bad.yaml: rule 'b': y"),
    ]


def test_a_consistent_configuration_passes_without_naming_any_value() -> None:
    found = offline_findings(BOTH, receiver_errors=None, worker_errors=None, rules_path="r.yaml", rules=1)

    assert [f for f in found if f.status != "ok"] == []
    _no_values(found)


def test_start_up_checks_of_each_role() -> None:
    env = {**BOTH, "PUBLIC_BASE_URL": "https://x.example/webhooks/zoho", "HUBSPOT_CLIENT_SECRET": "pat-na1-x"}

    assert [f.setting for f in _fails(role_findings("receiver", env))] == ["PUBLIC_BASE_URL", "HUBSPOT_CLIENT_SECRET"]
    assert [f.setting for f in _fails(role_findings("worker", env))] == ["PUBLIC_BASE_URL"]
    assert _fails(role_findings("worker", BOTH)) == []


def test_a_half_configured_source_fails_once() -> None:
    env = {"ZOHO_CLIENT_SECRET": "s", "ZOHO_REFRESH_TOKEN": "r", "HUBSPOT_ACCESS_TOKEN": "x"}

    alone = [f for f in source_findings(env) if f.status == "fail"]
    both = offline_findings(
        env,
        receiver_errors=None,
        worker_errors=["ZOHO_CLIENT_ID: not set; Zoho needs all of ..."],
        rules_path="r.yaml",
        rules=1,
    )

    assert [(f.setting, f.message) for f in alone] == [
        ("ZOHO_CLIENT_ID", "Zoho is half configured in the worker: ZOHO_CLIENT_ID not set")
    ]
    assert [f.check for f in both if f.status == "fail"] == ["worker settings"]


def test_a_url_setting_that_does_not_parse_fails_naming_it_and_crashes_no_other_check() -> None:
    bad = {
        **BOTH,
        "REDIS_URL": "redis://[bad",
        "PUBLIC_BASE_URL": "http://[bad",
        "ZOHO_API_DOMAIN": "http://[bad",
        "ZOHO_ACCOUNTS_URL": "accounts.zoho.eu",
        "HUBSPOT_API_BASE": "https://api.hubapi.com",
    }

    assert [(f.setting, f.message) for f in url_findings(bad)] == [
        ("REDIS_URL", "is not a valid Redis URL"),
        ("PUBLIC_BASE_URL", "is not a valid URL"),
        ("ZOHO_API_DOMAIN", "is not a valid URL"),
        ("ZOHO_ACCOUNTS_URL", "is not an http:// or https:// URL with a host"),
    ]
    assert url_findings({**BOTH, "REDIS_URL": "foo://127.0.0.1"})[0].setting == "REDIS_URL"
    assert url_findings({**BOTH, "REDIS_URL": "rediss://user:pw@redis:6380/2"}) == []
    found = offline_findings(bad, receiver_errors=None, worker_errors=None, rules_path="r.yaml", rules=1)
    assert {f.setting for f in found if f.check == "urls"} == {
        "REDIS_URL",
        "PUBLIC_BASE_URL",
        "ZOHO_API_DOMAIN",
        "ZOHO_ACCOUNTS_URL",
    }
    assert _fails(role_findings("receiver", bad)) == [] and _fails(role_findings("worker", bad)) == []


def test_a_url_the_settings_class_refused_fails_once() -> None:
    bad = {**BOTH, "PUBLIC_BASE_URL": "http://[bad"}
    refused = ["PUBLIC_BASE_URL: Input should be a valid URL, invalid IPv6 address"]

    found = offline_findings(bad, receiver_errors=refused, worker_errors=None, rules_path="r.yaml", rules=1)

    assert [f.check for f in _fails(found)] == ["receiver settings"]
