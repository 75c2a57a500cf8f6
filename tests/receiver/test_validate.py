"""Zoho payload model and its translation into ChangeEvents."""

from __future__ import annotations

import pytest

from receiver.errors import SchemaError
from receiver.validate import validate_zoho, zoho_events
from tests.conftest import sample


def test_documented_update_sample_becomes_one_event() -> None:
    (event,) = zoho_events(validate_zoho(sample("zoho/appointment_update")))

    assert event.source == "zoho"
    assert event.module == "Appointments__s"
    assert event.record_id == "5545974000002555001"
    assert event.notified_at_ms == 1763717400123
    assert event.channel_id == "1000000068001"
    assert event.changed_fields == ("Appointment_Start_Time", "Modified_By", "Reschedule_Count")
    assert event.job_id() == "zoho:Appointments__s:5545974000002555001:update:1763717400123"


def test_changed_fields_come_from_affected_fields_and_values_per_record() -> None:
    body = sample("zoho/appointment_update") | {
        "ids": ["1", "2"],
        "affected_fields": [{"1": ["Status"]}, {"2": ["Location"]}],
        "affected_values": [{"record_id": "2", "values": {"Remind_At": None}}],
    }

    events = zoho_events(validate_zoho(body))

    assert [(e.record_id, e.changed_fields) for e in events] == [("1", ("Status",)), ("2", ("Location", "Remind_At"))]


def test_unknown_keys_are_ignored_for_forward_compatibility() -> None:
    notification = validate_zoho(sample("zoho/appointment_update") | {"new_zoho_key": {"x": 1}})

    assert notification.module == "Appointments__s"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ids": []}, "ids"),
        ({"ids": [1.5]}, "ids.0"),
        ({"ids": [True]}, "ids.0"),
        ({"server_time": -1}, "server_time"),
        ({"server_time": "soon"}, "server_time"),
        ({"module": ""}, "module"),
        ({"operation": "edit"}, "operation"),
        ({"affected_fields": {"1": ["x"]}}, "affected_fields"),
        ({"channel_id": None}, "channel_id"),
    ],
)
def test_schema_errors_name_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(SchemaError) as raised:
        validate_zoho(sample("zoho/appointment_update") | change)

    assert raised.value.errors is not None
    assert field in {error["field"] for error in raised.value.errors}


def test_a_non_object_body_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as raised:
        validate_zoho([1])

    assert raised.value.errors == [
        {"field": "(body)", "problem": "Input should be a valid dictionary or instance of ZohoNotification"}
    ]
