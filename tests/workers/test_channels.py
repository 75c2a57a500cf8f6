"""Channel upkeep's plan: enable the missing, renew the expiring or the changed, check the expiry granted. Pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from workers.channels import (
    EVENTS,
    Outcome,
    Wanted,
    asked_expiry,
    differences,
    grant_problem,
    plan,
    shown_url,
    summary,
    time_left,
)
from workers.crm.zoho_watch_models import Granted, WatchChannel

NOW = datetime(2026, 11, 30, 5, 12, 7, 654_321, tzinfo=UTC)
TOKEN = "notify-token-of-the-receiver"
WANTED = Wanted(("1000000068001", "1000000068002"), "https://crmflow.example.com/", SecretStr(TOKEN))


def listed(channel_id: str = "1000000068001", **overrides: Any) -> WatchChannel:
    """A channel as Zoho lists it, matching WANTED and expiring in five days unless overridden."""
    channel = WatchChannel(
        channel_id=channel_id,
        events=EVENTS,
        notify_url="https://crmflow.example.com/webhooks/zoho",
        expires_at=NOW + timedelta(days=5),
        token=SecretStr(TOKEN),
        return_affected_field_values=True,
        notify_on_related_action=False,
    )
    return replace(channel, **overrides)


def test_the_expiry_asked_is_just_under_a_week_ahead_without_milliseconds() -> None:
    expiry = asked_expiry(NOW)

    assert expiry == datetime(2026, 12, 7, 4, 12, 7, tzinfo=UTC)
    assert WANTED.spec("1").item(expiry)["channel_expiry"] == "2026-12-07T04:12:07+00:00"


def test_the_request_item_carries_every_key_crmflow_owns() -> None:
    item = WANTED.spec("1000000068001").item(asked_expiry(NOW))

    assert item == {
        "channel_id": "1000000068001",
        "events": ["Appointments__s.create", "Appointments__s.edit", "Appointments__s.delete"],
        "notify_url": "https://crmflow.example.com/webhooks/zoho",
        "token": TOKEN,
        "channel_expiry": "2026-12-07T04:12:07+00:00",
        "return_affected_field_values": True,
        "notify_on_related_action": False,
    }


def test_a_missing_channel_is_enabled_and_a_healthy_one_left_alone() -> None:
    steps = plan(WANTED, {"1000000068001": listed()}, NOW)

    assert [(s.channel_id, s.action, s.reason) for s in steps] == [
        ("1000000068001", "ok", "5d 0h left"),
        ("1000000068002", "enable", "Zoho does not have it"),
    ]


def test_a_channel_expiring_within_two_days_is_renewed() -> None:
    have = {
        "1000000068001": listed(expires_at=NOW + timedelta(days=2)),
        "1000000068002": listed("1000000068002", expires_at=NOW + timedelta(days=2, seconds=1)),
    }

    steps = plan(WANTED, have, NOW)

    assert [(s.action, s.reason) for s in steps] == [("renew", "expires in 2d 0h"), ("ok", "2d 0h left")]


def test_an_expired_channel_still_listed_is_enabled_again() -> None:
    steps = plan(WANTED, {"1000000068001": listed(expires_at=NOW)}, NOW)

    assert steps[0].action == "enable"


def test_renew_all_renews_even_a_healthy_channel() -> None:
    steps = plan(WANTED, {"1000000068001": listed()}, NOW, renew_all=True)

    assert [s.action for s in steps] == ["renew", "enable"]


def test_a_channel_that_differs_from_the_one_wanted_is_renewed_with_the_reason_but_never_the_token() -> None:
    changed = listed(
        events=("Appointments__s.edit",),
        notify_url="https://old.example.com/webhooks/zoho",
        token=SecretStr("someone-else's-token"),
        notify_on_related_action=True,
    )

    (step, _) = plan(WANTED, {"1000000068001": changed}, NOW)

    assert step.action == "renew"
    assert step.reason == (
        "events are Appointments__s.edit "
        "(wanted Appointments__s.create, Appointments__s.edit, Appointments__s.delete); "
        "notify_url is https://old.example.com/webhooks/zoho (wanted https://crmflow.example.com/webhooks/zoho); "
        "its token is not ZOHO_NOTIFY_TOKEN; notify_on_related_action is True"
    )
    assert "someone-else" not in step.reason and TOKEN not in step.reason


def test_a_wiped_token_or_settings_are_differences() -> None:
    wiped = listed(token=None, return_affected_field_values=None)

    assert differences(WANTED.spec("1000000068001"), wiped) == [
        "it has no token",
        "return_affected_field_values is None",
    ]


def test_events_all_covers_create_edit_and_delete() -> None:
    assert differences(WANTED.spec("1000000068001"), listed(events=("Appointments__s.all",))) == []


def test_the_expiry_asked_is_accepted_within_a_minute() -> None:
    asked = asked_expiry(NOW)

    assert grant_problem(asked, Granted("1", asked)) is None
    assert grant_problem(asked, Granted("1", asked - timedelta(seconds=59))) is None
    assert grant_problem(asked, Granted("1", asked - timedelta(seconds=61))) is not None


def test_the_silent_one_hour_fallback_is_a_failure_with_its_reason() -> None:
    asked = asked_expiry(NOW)
    one_hour = (NOW + timedelta(hours=1)).replace(microsecond=0)

    problem = grant_problem(asked, Granted("1000000068001", one_hour))

    assert problem == (
        "Zoho granted an expiry of 2026-11-30T06:12:07+00:00 instead of the 2026-12-07T04:12:07+00:00 asked "
        "(Zoho's silent one-hour fallback: the expiry was more than a week ahead by Zoho's clock, or unreadable "
        "to it; check this machine's clock)"
    )


def test_time_left_reads_at_a_glance() -> None:
    assert time_left(NOW + timedelta(days=6, hours=23, minutes=5), NOW) == "6d 23h"
    assert time_left(NOW + timedelta(hours=1, minutes=2), NOW) == "1h 2m"
    assert time_left(NOW + timedelta(minutes=3, seconds=4), NOW) == "3m 4s"
    assert time_left(NOW + timedelta(seconds=4), NOW) == "4s"
    assert time_left(NOW, NOW) == "expired"
    assert time_left(None, NOW) == "?"


def test_the_summary_says_what_was_done_per_channel() -> None:
    outcomes = [
        Outcome("1", "renewed", "expires in 1d 2h", NOW + timedelta(days=6, hours=23)),
        Outcome("2", "ok", "5d 0h left", NOW + timedelta(days=5)),
        Outcome("3", "not enabled", "Zoho does not have it", error="INVALID_DATA: invalid data (notify_url)"),
    ]

    assert summary(outcomes, NOW) == (
        "1 renewed (expires in 1d 2h): 6d 23h left; 2 ok: 5d 0h left; "
        "3 not enabled (Zoho does not have it): INVALID_DATA: invalid data (notify_url)"
    )
    assert summary([], NOW) == "no channels wanted"


def test_a_notify_url_is_shown_without_what_could_be_a_credential() -> None:
    assert shown_url("https://crmflow.example.com/webhooks/zoho") == "https://crmflow.example.com/webhooks/zoho"
    assert shown_url("https://h.example/notify?authorization=Zoho-oauthtoken%20x") == "https://h.example/notify?…"
    assert shown_url("https://user:secret@h.example:8443/n") == "https://h.example:8443/n"
    assert shown_url(None) is None
