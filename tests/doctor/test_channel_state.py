"""The channel state against ZOHO_CHANNEL_IDS, with and without the workers keeping channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from crmflow.doctor.channel_state import channel_findings
from workers.channels import EVENTS, Wanted
from workers.crm.zoho_watch_models import WatchChannel

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WANTED = Wanted(("1", "2"), "https://crmflow.example.com", SecretStr("notify-token-value"))


def _channel(
    channel_id: str,
    *,
    left: timedelta,
    url: str = WANTED.notify_url,
    token: str = "notify-token-value",
    related: bool = False,
) -> WatchChannel:
    return WatchChannel(channel_id, EVENTS, url, NOW + left, SecretStr(token), True, related)


def test_a_kept_channel_passes_and_a_missing_one_fails_without_upkeep() -> None:
    found = channel_findings(WANTED, {"1": _channel("1", left=timedelta(days=6))}, NOW, upkeep=False)

    assert [(f.check, f.status) for f in found] == [("zoho channel 1", "ok"), ("zoho channel 2", "fail")]
    assert "crmflow zoho subscribe" in found[1].fix


def test_with_upkeep_what_the_workers_will_fix_is_a_warning() -> None:
    have = {
        "1": _channel("1", left=timedelta(days=1)),
        "2": _channel("2", left=timedelta(days=6), url="https://old.example.com/webhooks/zoho"),
    }

    kept = channel_findings(WANTED, have, NOW, upkeep=True)
    alone = channel_findings(WANTED, have, NOW, upkeep=False)

    assert [f.status for f in kept] == ["ok", "warn"]
    assert [f.status for f in alone] == ["warn", "fail"]
    assert "notify_url is https://old.example.com/webhooks/zoho" in alone[1].message
    assert alone[1].setting == "PUBLIC_BASE_URL"
    assert alone[0].fix == "run `crmflow zoho renew`"


def test_another_token_is_named_not_shown() -> None:
    have = {cid: _channel(cid, left=timedelta(days=6), token="other-token-value") for cid in ("1", "2")}

    found = channel_findings(WANTED, have, NOW, upkeep=False)

    assert all(f.status == "fail" and "its token is not ZOHO_NOTIFY_TOKEN" in f.message for f in found)
    assert {f.setting for f in found} == {"ZOHO_NOTIFY_TOKEN"}
    assert "token-value" not in repr(found)


def test_a_difference_no_setting_causes_names_none_and_suggests_renew() -> None:
    """E.g. the sandbox's default channel notifying on related actions: neither URL nor token is at fault."""
    have = {cid: _channel(cid, left=timedelta(days=6), related=True) for cid in ("1", "2")}

    kept = channel_findings(WANTED, have, NOW, upkeep=True)
    alone = channel_findings(WANTED, have, NOW, upkeep=False)

    assert all("notify_on_related_action is True" in f.message and f.setting == "" for f in kept + alone)
    assert {f.status for f in kept} == {"warn"} and {f.status for f in alone} == {"fail"}
    assert alone[0].fix == "run `crmflow zoho renew`"
