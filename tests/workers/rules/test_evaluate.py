"""evaluate(): which rules fire for a change, and which actions they plan, in order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workers.diff import Change, FieldChange
from workers.rules.conditions import MISSING, holds, resolve
from workers.rules.context import Operation, RuleContext
from workers.rules.evaluate import PlannedAction, evaluate, plan
from workers.rules.load import parse_rules
from workers.rules.model import Condition, LogRescheduleHistoryParams, RuleSet

RULES = """\
version: 1
rules:
  - name: reschedules
    source: zoho
    module: Appointments__s
    when:
      changed: [Appointment_Start_Time, Rescheduled_To]
    conditions:
      - field: Status
        not_in: [Cancelled]
    actions:
      - type: log_reschedule_history
        with: {reason: By Team}
      - type: log_reschedule_history
        with: {note: second}
  - name: owner-42
    source: zoho
    module: Appointments__s
    when:
      changed: Owner
    conditions:
      - field: Owner.id
        equals: "42"
    actions:
      - type: log_reschedule_history
  - name: switched-off
    source: zoho
    module: Appointments__s
    when:
      changed: [Appointment_Start_Time]
    actions:
      - type: log_reschedule_history
    enabled: false
  - name: also-reschedules
    source: zoho
    module: Appointments__s
    when:
      changed: Appointment_Start_Time
    actions:
      - type: log_reschedule_history
        with: {note: third}
"""

SCHEDULED = {"Status": "Scheduled", "Owner": {"name": "Ann", "id": "42"}}


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return parse_rules(RULES, origin="rules.yaml")


def planned(ruleset: RuleSet, changed: list[str], record: dict[str, Any], **target: str) -> list[tuple[str, int]]:
    where = {"source": "zoho", "module": "Appointments__s"} | target
    actions = evaluate(ruleset, changed=changed, record=record, **where)
    return [(action.rule, action.index) for action in actions]


@pytest.mark.parametrize(
    ("changed", "record", "expected"),
    [
        # Trigger: any listed field changed; disabled rules never fire; file order, then action order.
        (["Appointment_Start_Time"], SCHEDULED, [("reschedules", 0), ("reschedules", 1), ("also-reschedules", 0)]),
        (["Rescheduled_To", "Modified_Time"], SCHEDULED, [("reschedules", 0), ("reschedules", 1)]),
        (["Modified_Time", "Duration"], SCHEDULED, []),
        ([], SCHEDULED, []),
        # Conditions hold on the fetched record.
        (["Appointment_Start_Time"], {**SCHEDULED, "Status": "Cancelled"}, [("also-reschedules", 0)]),
        (
            ["Appointment_Start_Time", "Owner"],
            SCHEDULED,
            [
                ("reschedules", 0),
                ("reschedules", 1),
                ("owner-42", 0),
                ("also-reschedules", 0),
            ],
        ),
        (["Owner"], {**SCHEDULED, "Owner": {"name": "Bob", "id": "43"}}, []),
        (["Owner"], {**SCHEDULED, "Owner": None}, []),
    ],
)
def test_which_rules_fire(ruleset: RuleSet, changed: list[str], record: dict[str, Any], expected: list[Any]) -> None:
    assert planned(ruleset, changed, record) == expected


@pytest.mark.parametrize(("source", "module"), [("zoho", "Contacts"), ("hubspot", "Appointments__s")])
def test_rules_for_another_source_or_module_do_not_fire(ruleset: RuleSet, source: str, module: str) -> None:
    assert planned(ruleset, ["Appointment_Start_Time", "Owner"], SCHEDULED, source=source, module=module) == []


def test_a_planned_action_carries_the_rule_the_position_and_the_validated_action(ruleset: RuleSet) -> None:
    first, second, third = evaluate(
        ruleset, source="zoho", module="Appointments__s", changed={"Appointment_Start_Time"}, record=SCHEDULED
    )

    assert first == PlannedAction(rule="reschedules", index=0, action=ruleset.rules[0].actions[0])
    assert first.action.params == LogRescheduleHistoryParams(reason="By Team")
    assert second.action.params == LogRescheduleHistoryParams(note="second")
    assert third.action.params == LogRescheduleHistoryParams(note="third")


def test_a_planned_action_serializes_its_parameters(ruleset: RuleSet) -> None:
    [action, *_] = evaluate(
        ruleset, source="zoho", module="Appointments__s", changed=["Appointment_Start_Time"], record=SCHEDULED
    )

    assert action.model_dump() == {
        "rule": "reschedules",
        "index": 0,
        "action": {"type": "log_reschedule_history", "params": {"reason": "By Team", "note": None}},
    }


RECORD: dict[str, Any] = {
    "Status": "Scheduled",
    "Duration": 30,
    "Ratio": 0.5,
    "Flag": True,
    "Empty": "",
    "Null": None,
    "Tags": [],
    "Owner": {"name": "Ann", "id": "42", "Manager": {"id": "7"}},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "Status", "equals": "Scheduled"}, True),
        ({"field": "Status", "equals": "scheduled"}, False),
        ({"field": "Missing", "equals": "Scheduled"}, False),
        ({"field": "Duration", "equals": 30}, True),
        ({"field": "Duration", "equals": 30.0}, True),
        ({"field": "Duration", "equals": "30"}, False),
        ({"field": "Ratio", "equals": 0.5}, True),
        ({"field": "Flag", "equals": True}, True),
        ({"field": "Flag", "equals": 1}, False),
        ({"field": "Duration", "equals": True}, False),
        ({"field": "Owner", "equals": "Ann"}, False),
        ({"field": "Status", "not_equals": "Cancelled"}, True),
        ({"field": "Status", "not_equals": "Scheduled"}, False),
        ({"field": "Missing", "not_equals": "Scheduled"}, True),
        ({"field": "Status", "in": ["Overdue", "Scheduled"]}, True),
        ({"field": "Status", "in": ["Overdue", "Completed"]}, False),
        ({"field": "Duration", "in": ["30", 15]}, False),
        ({"field": "Missing", "in": ["Scheduled"]}, False),
        ({"field": "Status", "not_in": ["Cancelled", "Completed"]}, True),
        ({"field": "Status", "not_in": ["Scheduled"]}, False),
        ({"field": "Missing", "not_in": ["Scheduled"]}, True),
        ({"field": "Status", "is_set": True}, True),
        ({"field": "Duration", "is_set": True}, True),
        ({"field": "Flag", "is_set": True}, True),
        ({"field": "Tags", "is_set": True}, True),
        ({"field": "Empty", "is_set": True}, False),
        ({"field": "Null", "is_set": True}, False),
        ({"field": "Missing", "is_set": True}, False),
        ({"field": "Empty", "is_set": False}, True),
        ({"field": "Status", "is_set": False}, False),
        ({"field": "Owner.id", "equals": "42"}, True),
        ({"field": "Owner.id", "equals": 42}, False),
        ({"field": "Owner.Manager.id", "in": ["7", "8"]}, True),
        ({"field": "Owner.email", "is_set": False}, True),
        ({"field": "Status.name", "is_set": False}, True),
        ({"field": "Null.id", "not_equals": "42"}, True),
    ],
)
def test_condition_operators(condition: dict[str, Any], expected: bool) -> None:
    assert holds(Condition.model_validate(condition), RECORD) is expected


def test_resolve_follows_dotted_paths_through_mappings_only() -> None:
    assert resolve(RECORD, "Owner.Manager.id") == "7"
    assert resolve(RECORD, "Owner") == RECORD["Owner"]
    assert resolve(RECORD, "Null") is None
    assert resolve(RECORD, "Null.id") is MISSING
    assert resolve(RECORD, "Status.len") is MISSING
    assert resolve(RECORD, "Nope") is MISSING


# --- when.operation, previous: and the change's context -------------------------------------------------

OPERATIONS = """\
version: 1
rules:
  - name: created
    source: hubspot
    module: appointments
    when: {operation: insert}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/created"}
  - name: deleted
    source: hubspot
    module: appointments
    when: {operation: [delete]}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/deleted"}
  - name: status-changed-on-update
    source: hubspot
    module: appointments
    when: {operation: [update], changed: hs_appointment_status}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/status"}
  - name: status-changed-any-time
    source: hubspot
    module: appointments
    when: {operation: [insert, update, delete], changed: [hs_appointment_status]}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/any"}
  - name: status-changed-without-operation
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/classic"}
  - name: cancelled-from-scheduled
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    conditions:
      - {field: hs_appointment_status, equals: CANCELED}
      - {previous: hs_appointment_status, equals: SCHEDULED}
    actions:
      - type: add_note
        with: {title: Cancelled, content: "was {{ previous.hs_appointment_status }}"}
"""
T = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
STATUS = "hs_appointment_status"


@pytest.fixture(scope="module")
def operations() -> RuleSet:
    return parse_rules(OPERATIONS, origin="operations.yaml")


def fired(
    ruleset: RuleSet, operation: Operation, change: Change, record: dict[str, Any], known: dict[str, Any]
) -> list[str]:
    context = RuleContext.build(
        source="hubspot",
        module="appointments",
        operation=operation,
        record=record,
        previous=known,
        change=change,
        now=T,
        start_field="hs_appointment_start",
    )
    return [step.rule for step in plan(ruleset, context, change.fields)]


STATUS_MOVED = Change(fields={STATUS: FieldChange("SCHEDULED", "CANCELED")}, since=T)


@pytest.mark.parametrize(
    ("operation", "change", "record", "known", "expected"),
    [
        ("insert", Change(first_seen=True), {STATUS: "SCHEDULED"}, {}, ["created"]),
        ("update", Change(since=T), {STATUS: "SCHEDULED"}, {STATUS: "SCHEDULED"}, []),
        (
            "update",
            STATUS_MOVED,
            {STATUS: "CANCELED"},
            {STATUS: "SCHEDULED"},
            [
                "status-changed-on-update",
                "status-changed-any-time",
                "status-changed-without-operation",
                "cancelled-from-scheduled",
            ],
        ),
        (
            "update",
            Change(fields={STATUS: FieldChange("NO_SHOW", "CANCELED")}, since=T),
            {STATUS: "CANCELED"},
            {STATUS: "NO_SHOW"},
            ["status-changed-on-update", "status-changed-any-time", "status-changed-without-operation"],
        ),
        (
            "insert",
            Change(fields={STATUS: FieldChange("SCHEDULED", "CANCELED")}, first_seen=True),
            {STATUS: "CANCELED"},
            {STATUS: "SCHEDULED"},
            ["created", "status-changed-any-time", "status-changed-without-operation", "cancelled-from-scheduled"],
        ),
        # A delete: no record, every known field changed to nothing. Rules fire on it only if they name it.
        (
            "delete",
            Change(fields={STATUS: FieldChange("SCHEDULED", None)}, since=T),
            {},
            {STATUS: "SCHEDULED"},
            ["deleted", "status-changed-any-time"],
        ),
        ("delete", Change(first_seen=True), {}, {}, ["deleted"]),
    ],
)
def test_when_operation(
    operations: RuleSet,
    operation: Operation,
    change: Change,
    record: dict[str, Any],
    known: dict[str, Any],
    expected: list[str],
) -> None:
    assert fired(operations, operation, change, record, known) == expected


def test_a_rule_without_operation_fires_on_inserts_and_updates_only(operations: RuleSet) -> None:
    classic = next(rule for rule in operations.rules if rule.name == "status-changed-without-operation")

    assert classic.when.operations() == {"insert", "update"}
    assert operations.fires_on("hubspot", "appointments", "delete")
    assert not parse_rules(RULES, origin="rules.yaml").fires_on("zoho", "Appointments__s", "delete")


def test_without_a_context_a_change_is_an_update(operations: RuleSet) -> None:
    actions = evaluate(operations, source="hubspot", module="appointments", changed=[STATUS], record={STATUS: "X"})

    assert [a.rule for a in actions] == [
        "status-changed-on-update",
        "status-changed-any-time",
        "status-changed-without-operation",
    ]


def test_watched_fields_include_previous_conditions_and_template_fields() -> None:
    rules = parse_rules(
        """\
version: 1
rules:
  - name: stamp
    source: zoho
    module: Appointments__s
    when: {operation: update}
    conditions:
      - {previous: Status, equals: Overdue}
      - {field: reschedule.notice_hours, less_than: 24}
    actions:
      - type: update_record
        with:
          fields:
            Additional_Information: "{{ record.Appointment_Name }} / {{ previous['Location'] }} / {{ change.Duration }}"
      - type: notify
        with: {url: "https://hooks.example.com/x", text: "{{ rule.name }} {{ reschedule.old_start }}"}
""",
        origin="stamp.yaml",
    )

    # Additional_Information: the field update_record writes, watched so that its echo is recognised as crmflow's.
    watched = {"Status", "Appointment_Name", "Location", "Duration", "Additional_Information"}
    assert rules.watched_fields("zoho", "Appointments__s") == watched
