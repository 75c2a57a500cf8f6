"""Conditions: `previous:` tests, less_than / greater_than on numbers and date-times, and their operands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from workers.diff import Change, FieldChange
from workers.rules.conditions import holds
from workers.rules.context import RuleContext
from workers.rules.model import Condition

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)


def context(
    record: dict[str, Any], previous: dict[str, Any] | None = None, change: Change | None = None
) -> RuleContext:
    return RuleContext.build(
        source="hubspot",
        module="appointments",
        operation="update",
        record=record,
        previous=previous or {},
        change=change or Change(),
        now=NOW,
        start_field="hs_appointment_start",
    )


def check(condition: dict[str, Any], record: dict[str, Any], previous: dict[str, Any] | None = None) -> bool:
    return holds(Condition.model_validate(condition), context(record, previous))


CANCELLED_NOW = {"hs_appointment_status": "CANCELED"}


@pytest.mark.parametrize(
    ("condition", "previous", "expected"),
    [
        ({"previous": "hs_appointment_status", "not_equals": "CANCELED"}, {"hs_appointment_status": "SCHEDULED"}, True),
        ({"previous": "hs_appointment_status", "not_equals": "CANCELED"}, {"hs_appointment_status": "CANCELED"}, False),
        ({"previous": "hs_appointment_status", "equals": "SCHEDULED"}, {"hs_appointment_status": "SCHEDULED"}, True),
        ({"field": "hs_appointment_status", "equals": "SCHEDULED"}, {"hs_appointment_status": "SCHEDULED"}, False),
        ({"previous": "hs_appointment_status", "in": ["SCHEDULED", "NO_SHOW"]}, {}, False),  # unknown: unchanged
        ({"previous": "hubspot_owner_id", "is_set": False}, {"hubspot_owner_id": None}, True),
        ({"previous": "Owner.id", "equals": "42"}, {"Owner": {"id": "42"}}, True),
    ],
)
def test_previous_tests_the_value_before_the_change(
    condition: dict[str, Any], previous: dict[str, Any], expected: bool
) -> None:
    assert check(condition, CANCELLED_NOW, previous) is expected


def test_a_previous_condition_on_a_bare_record_sees_nothing() -> None:
    condition = Condition.model_validate({"previous": "hs_appointment_status", "is_set": True})

    assert holds(condition, CANCELLED_NOW) is False


@pytest.mark.parametrize(
    ("value", "operator", "bound", "expected"),
    [
        # Instants compare whatever their offsets: 11:00+01:00 is 10:00Z.
        ("2027-01-12T11:00:00+01:00", "less_than", "2027-01-12T10:00:01Z", True),
        ("2027-01-12T11:00:00+01:00", "less_than", "2027-01-12T10:00:00Z", False),
        ("2027-01-12T11:00:00+01:00", "greater_than", "2027-01-12T09:59:59Z", True),
        ("2027-01-12T11:00:00+01:00", "greater_than", "2027-01-12T10:00:00+00:00", False),
        ("2027-01-12T05:00:00-05:00", "greater_than", "2027-01-12T10:30:00+01:00", True),
        ("1799740800000", "less_than", "2027-01-12T10:00:00Z", True),  # HubSpot's epoch milliseconds
        ("2027-01-12T10:00:00", "less_than", "2030-01-01T00:00:00Z", False),  # no offset: not an instant
        ("2027-01-12", "less_than", "2030-01-01T00:00:00Z", False),
        ("soon", "less_than", "2030-01-01T00:00:00Z", False),
        (12, "less_than", "2030-01-01T00:00:00Z", False),
        (None, "less_than", "2030-01-01T00:00:00Z", False),
    ],
)
def test_date_times(value: Any, operator: str, bound: str, expected: bool) -> None:
    assert check({"field": "hs_appointment_start", operator: bound}, {"hs_appointment_start": value}) is expected


@pytest.mark.parametrize(
    ("value", "operator", "bound", "expected"),
    [
        (3, "less_than", 4, True),
        (4, "less_than", 4, False),
        (4.5, "greater_than", 4, True),
        (-1, "greater_than", -1.5, True),
        ("3600000", "greater_than", 60000, True),  # HubSpot sends numbers as text
        ("-2.5", "less_than", 0, True),
        ("1e3", "greater_than", 0, False),
        ("12 h", "greater_than", 0, False),
        (True, "greater_than", 0, False),  # a boolean is not a number
        ("2027-01-12T10:00:00Z", "greater_than", 0, False),
        (None, "less_than", 10, False),
        (float("nan"), "less_than", 10, False),
    ],
)
def test_numbers(value: Any, operator: str, bound: float, expected: bool) -> None:
    assert check({"field": "hs_duration", operator: bound}, {"hs_duration": value}) is expected


def test_a_missing_field_is_neither_less_nor_greater() -> None:
    assert check({"field": "hs_duration", "less_than": 10}, {}) is False
    assert check({"field": "hs_duration", "greater_than": 10}, {}) is False


def test_reschedule_fields() -> None:
    start = datetime(2027, 1, 12, 8, 0, tzinfo=UTC)
    change = Change(
        fields={"hs_appointment_start": FieldChange(start.isoformat(), (start + timedelta(days=1)).isoformat())}
    )
    ctx = context({}, change=change)

    def holds_here(condition: dict[str, Any]) -> bool:
        return holds(Condition.model_validate(condition), ctx)

    assert ctx.reschedule is not None and ctx.reschedule.notice_hours == 22.0
    assert holds_here({"field": "reschedule.notice_hours", "less_than": 24})
    assert not holds_here({"field": "reschedule.notice_hours", "less_than": 22})
    assert holds_here({"field": "reschedule.old_start", "less_than": "2027-01-12T09:00:00+01:00"}) is False
    assert holds_here({"field": "reschedule.new_start", "greater_than": "2027-01-12T09:00:00+01:00"})
    assert holds_here({"field": "reschedule.old_start", "is_set": True})
    # Without a start-time change there is no reschedule: nothing is less or greater, nothing is set.
    assert not holds(Condition.model_validate({"field": "reschedule.notice_hours", "less_than": 24}), context({}))
    assert holds(Condition.model_validate({"field": "reschedule.old_start", "is_set": False}), context({}))


@pytest.mark.parametrize(
    ("operand", "message"),
    [
        ("tomorrow", "'tomorrow' is neither a number nor an ISO 8601 date-time such as '2027-01-12T10:00:00Z'"),
        ("2027-01-12T10:00:00", "2027-01-12T10:00:00 has no UTC offset: add Z or one such as +01:00"),
        ("2027-13-12T10:00:00Z", "'2027-13-12T10:00:00Z' is not an ISO 8601 date-time"),
        ("2027-01-12", "is neither a number nor an ISO 8601 date-time"),
        (True, "must be a number or an ISO 8601 date-time such as '2027-01-12T10:00:00Z', not bool"),
        ([1], "must be a number or an ISO 8601 date-time such as '2027-01-12T10:00:00Z', not list"),
        (float("inf"), "must be a finite number"),
    ],
)
def test_an_operand_that_is_neither_a_number_nor_a_date_time_is_refused(operand: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        Condition.model_validate({"field": "hs_duration", "less_than": operand})


def test_operands_are_kept_as_numbers_and_instants() -> None:
    assert Condition.model_validate({"field": "x", "less_than": 24}).operand == 24
    moment = Condition.model_validate({"field": "x", "greater_than": "2027-01-12T11:00:00+01:00"}).operand
    assert moment == datetime(2027, 1, 12, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"equals": 1}, "needs 'field' (the value after the change) or 'previous' (the value before it)"),
        ({"field": "a", "previous": "a", "equals": 1}, "needs exactly one of 'field'"),
    ],
)
def test_a_condition_tests_exactly_one_of_field_and_previous(condition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Condition.model_validate(condition)
