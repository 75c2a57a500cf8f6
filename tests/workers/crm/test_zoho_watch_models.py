"""Zoho watch answers read item by item: listed channels merged per module, grants, per-item errors. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from workers.crm.zoho_watch_models import Granted, parse_channels, parse_disable, parse_write
from workers.errors import CrmRejectedError, CrmTransientError


def entry(module: str, events: list[str], expiry: str = "2026-12-07T04:12:07+00:00") -> dict[str, object]:
    return {
        "notify_on_related_action": False,
        "channel_expiry": expiry,
        "return_affected_field_values": True,
        "resource_name": module,
        "notify_url": "https://crmflow.example.com/webhooks/zoho",
        "notification_condition": None,
        "channel_id": "1000000068001",
        "events": events,
        "token": "secret-token",
    }


def test_a_channel_listed_once_per_module_is_one_channel_with_its_earliest_expiry() -> None:
    body = {
        "watch": [
            entry("Appointments__s", ["Appointments__s.edit"], "2026-12-07T04:12:07+00:00"),
            entry("Leads", ["Leads.all"], "2026-12-06T00:00:00+00:00"),
        ]
    }

    (channel,) = parse_channels(body).values()

    assert channel.events == ("Appointments__s.edit", "Leads.all")
    assert channel.expires_at == datetime(2026, 12, 6, tzinfo=UTC)
    assert channel.token is not None and channel.token.get_secret_value() == "secret-token"
    assert "secret-token" not in repr(channel)


def test_no_channels_is_an_empty_answer() -> None:
    assert parse_channels({}) == {}


def test_an_unreadable_list_is_transient() -> None:
    with pytest.raises(CrmTransientError):
        parse_channels({"watch": [{"events": []}]})


def test_a_mixed_write_answer_gives_each_channel_its_grant_or_error() -> None:
    body = {
        "watch": [
            {
                "code": "SUCCESS",
                "details": {"events": [{"channel_expiry": "2026-12-07T09:42:07+05:30", "channel_id": "1"}]},
                "message": "Successfully subscribed for actions-watch of the given module",
                "status": "success",
            },
            {
                "code": "INVALID_DATA",
                "details": {"api_name": "channel_id", "json_path": "$.watch[1].channel_id"},
                "message": "invalid data",
                "status": "error",
            },
        ]
    }

    results = parse_write(body, ["1", "2", "3"])

    assert results["1"] == Granted("1", datetime(2026, 12, 7, 4, 12, 7, tzinfo=UTC))
    assert isinstance(results["2"], CrmRejectedError)
    assert str(results["2"]) == "INVALID_DATA: invalid data (channel_id)"
    assert isinstance(results["3"], CrmTransientError)


def test_a_success_without_an_expiry_is_not_taken_for_a_grant() -> None:
    body = {"watch": [{"code": "SUCCESS", "details": {"events": []}, "status": "success"}]}

    assert isinstance(parse_write(body, ["1"])["1"], CrmTransientError)


def test_a_disable_answer_names_each_channel() -> None:
    body = {
        "watch": [
            {
                "code": "SUCCESS",
                "details": {"channel_id": "1", "resource_name": "Appointments__s"},
                "status": "success",
            },
            {"code": "INVALID_DATA", "details": {"channel_id": "2"}, "message": "invalid data", "status": "error"},
        ]
    }

    results = parse_disable(body, ["1", "2", "3"])

    assert results["1"] is None
    assert str(results["2"]) == "INVALID_DATA: invalid data"
    assert results["3"] is not None and results["3"].code == "UNKNOWN"
