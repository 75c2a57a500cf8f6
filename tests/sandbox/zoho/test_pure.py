"""Zoho pieces tested directly: datetime rules, config validation, watch conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sandbox.config import SandboxConfig
from sandbox.zoho.errors import RecordError
from sandbox.zoho.time import format_datetime, parse_datetime, parse_offset
from sandbox.zoho.watch import MODULE_IDS
from sandbox.zoho.watch_conditions import condition_allows, parse_conditions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-05-02T09:30:00+05:30", datetime(2023, 5, 2, 4, 0, tzinfo=UTC)),
        ("2023-05-02T04:00:00Z", datetime(2023, 5, 2, 4, 0, tzinfo=UTC)),
        ("2023-05-02T04:00:00-00:00", datetime(2023, 5, 2, 4, 0, tzinfo=UTC)),
    ],
)
def test_accepted_datetimes(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text",
    ["2023-05-02T09:30:00.000+05:30", "2023-05-02T09:30:00", "2023-05-02", "2023-13-02T09:30:00Z", None, 1683000000],
)
def test_refused_datetimes(text: object) -> None:
    assert parse_datetime(text) is None


def test_rendering_drops_microseconds_and_spells_the_offset() -> None:
    value = datetime(2023, 5, 2, 4, 0, 0, 999_999, tzinfo=UTC)

    assert format_datetime(value, timezone(timedelta(hours=5, minutes=30))) == "2023-05-02T09:30:00+05:30"
    assert format_datetime(value, UTC) == "2023-05-02T04:00:00+00:00"


@pytest.mark.parametrize("offset", ["+5:30", "UTC", "+14:30", "+05:60"])
def test_bad_offsets_are_refused(offset: str) -> None:
    with pytest.raises(ValueError):
        parse_offset(offset)


@pytest.mark.parametrize("overrides", [{"timezone_offset": "Z"}, {"notify_token": "x" * 51}, {"channel_id": "chan-1"}])
def test_config_validates_itself(overrides: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        SandboxConfig(**overrides)  # type: ignore[arg-type]


def test_and_condition_needs_every_field() -> None:
    raw = [
        {
            "type": "field_selection",
            "module": {"id": MODULE_IDS["Appointments__s"]},
            "field_selection": {
                "group_operator": "and",
                "group": [{"field": {"api_name": "Status"}}, {"field": {"api_name": "Duration"}}],
            },
        }
    ]

    conditions = parse_conditions(raw, 0, MODULE_IDS)

    assert not isinstance(conditions, RecordError)
    assert condition_allows(conditions, "Appointments__s", ("Status", "Duration"))
    assert not condition_allows(conditions, "Appointments__s", ("Status",))
    assert condition_allows(conditions, "Appointments_Rescheduled_History__s", ())


def test_condition_groups_hold_at_most_two_nodes() -> None:
    node = {"field": {"api_name": "Status"}}
    raw = [
        {
            "type": "field_selection",
            "module": {"api_name": "Appointments__s"},
            "field_selection": {"group_operator": "or", "group": [node, node, node]},
        }
    ]

    result = parse_conditions(raw, 2, MODULE_IDS)

    assert isinstance(result, RecordError)
    assert result.details == {
        "api_name": "group",
        "json_path": "$.watch[2].notification_condition[0].field_selection.group",
        "maximum_length": 2,
    }
