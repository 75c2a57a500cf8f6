"""RuleContext: the change as rules see it: record, previous values, the start-time change, template variables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workers.diff import Change, FieldChange
from workers.rules.context import MISSING, RuleContext, reschedule_of

NOW = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
START = "Appointment_Start_Time"


def moved(old: object, new: object, **others: FieldChange) -> Change:
    return Change(fields={START: FieldChange(old, new), **others}, since=NOW - timedelta(days=1))


def context(change: Change, **overrides: object) -> RuleContext:
    values: dict[str, object] = {
        "source": "zoho",
        "module": "Appointments__s",
        "operation": "update",
        "record": {"Status": "Scheduled", START: "2027-01-12T14:00:00+01:00", "Owner": {"id": "42"}},
        "previous": {"Status": "Overdue"},
        "change": change,
        "now": NOW,
        "start_field": START,
    } | overrides
    return RuleContext.build(**values)  # type: ignore[arg-type]


def test_a_start_time_change_is_a_reschedule_with_hours_of_notice_before_the_old_start() -> None:
    ctx = context(moved("2027-01-12T10:00:00Z", "2027-01-12T14:00:00+01:00"))

    assert ctx.reschedule is not None
    assert ctx.reschedule.old_start == datetime(2027, 1, 12, 10, 0, tzinfo=UTC)
    assert ctx.reschedule.new_start == datetime(2027, 1, 12, 13, 0, tzinfo=UTC)
    assert ctx.reschedule.notice_hours == 24.0
    assert ctx.resolve("reschedule.notice_hours") == 24.0
    assert ctx.resolve("reschedule.old_start") == datetime(2027, 1, 12, 10, 0, tzinfo=UTC)


def test_notice_is_negative_once_the_old_start_has_passed() -> None:
    reschedule = reschedule_of(moved("2027-01-11T08:30:00+00:00", "2027-01-13T08:30:00+00:00"), START, NOW)

    assert reschedule is not None
    assert reschedule.notice_hours == -1.5


@pytest.mark.parametrize(
    "change",
    [
        Change(),
        Change(fields={"Status": FieldChange("Overdue", "Scheduled")}),
        moved(None, "2027-01-12T14:00:00Z"),  # a start set for the first time is no reschedule
        moved("not a time", "2027-01-12T14:00:00Z"),
    ],
)
def test_no_reschedule_without_a_start_moving_from_one_time_to_another(change: Change) -> None:
    ctx = context(change)

    assert ctx.reschedule is None
    assert ctx.resolve("reschedule.notice_hours") is MISSING
    assert ctx.variables()["reschedule"] is None


def test_no_reschedule_for_a_module_without_a_start_field() -> None:
    assert context(moved("2027-01-12T10:00:00Z", "2027-01-13T10:00:00Z"), start_field=None).reschedule is None


def test_previous_is_the_known_old_value_else_the_records_own() -> None:
    ctx = context(Change())

    assert ctx.previous["Status"] == "Overdue"
    assert ctx.previous["Owner"] == {"id": "42"}  # nothing known of its past: unchanged as far as crmflow knows
    assert ctx.resolve_previous("Owner.id") == "42"
    assert ctx.resolve_previous("Nope") is MISSING
    assert "Nope" not in ctx.previous
    assert set(ctx.previous) == {"Status", START, "Owner"}
    assert len(ctx.previous) == 3


def test_after_a_delete_previous_is_all_there_is() -> None:
    ctx = context(Change(), operation="delete", record={}, previous={"Status": "Scheduled"})

    assert ctx.resolve("Status") is MISSING
    assert ctx.resolve_previous("Status") == "Scheduled"


def test_the_template_variables() -> None:
    change = moved("2027-01-12T10:00:00Z", "2027-01-12T14:00:00+01:00", Status=FieldChange("Overdue", "Scheduled"))
    ctx = context(change).for_rule("late-moves")

    variables = ctx.variables()

    assert set(variables) == {"record", "previous", "change", "reschedule", "rule"}
    assert variables["record"]["Status"] == "Scheduled"
    assert variables["previous"]["Status"] == "Overdue"
    assert variables["change"] == {
        START: {"old": "2027-01-12T10:00:00Z", "new": "2027-01-12T14:00:00+01:00"},
        "Status": {"old": "Overdue", "new": "Scheduled"},
    }
    assert variables["reschedule"]["notice_hours"] == 24.0
    assert variables["rule"] == {"name": "late-moves", "source": "zoho", "module": "Appointments__s"}


def test_with_record_keeps_everything_else() -> None:
    ctx = context(moved("2027-01-12T10:00:00Z", "2027-01-12T14:00:00Z")).for_rule("r")

    other = ctx.with_record({"Status": "Cancelled"})

    assert other.resolve("Status") == "Cancelled"
    assert other.previous["Status"] == "Overdue"
    assert (other.rule, other.reschedule, other.operation) == ("r", ctx.reschedule, "update")
