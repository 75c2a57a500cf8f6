"""Every kind of mistake in a rule gives one exact problem line: file, rule, field path, what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from workers.rules import check
from workers.rules.load import RuleFileError, parse_rules
from workers.rules.model import LogRescheduleHistoryParams
from workers.rules.registry import ActionType
from workers.rules.salvage import salvage_problems
from workers.rules.yamltext import parse_yaml

REPO = Path(__file__).resolve().parents[3]

VALID = """\
version: 1
rules:
  - name: zoho-log
    source: zoho
    module: Appointments__s
    when:
      changed: [Appointment_Start_Time]
    conditions:
      - field: Status
        not_in: [Cancelled]
    actions:
      - type: log_reschedule_history
"""

RULE = "rules/bad.yaml: rule 'zoho-log' (rules[0])"


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, origin="rules/bad.yaml")
    assert caught.value.path == "rules/bad.yaml"
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def edited(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new)


def test_the_valid_rule_is_valid() -> None:
    assert [rule.name for rule in parse_rules(VALID, origin="rules/bad.yaml").rules] == ["zoho-log"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "[Appointment_Start_Time]",
            "[Appointment_Start_Tme]",
            "when.changed[0]: unknown field 'Appointment_Start_Tme' for zoho/Appointments__s "
            "(did you mean 'Appointment_Start_Time'?)",
        ),
        (
            "[Appointment_Start_Time]",
            "[Status, appointment_start_time]",
            "when.changed[1]: unknown field 'appointment_start_time' for zoho/Appointments__s "
            "(did you mean 'Appointment_Start_Time'?)",
        ),
        ("[Appointment_Start_Time]", "[Xyzzy]", "when.changed[0]: unknown field 'Xyzzy' for zoho/Appointments__s"),
        (
            "field: Status",
            "field: Ownr.id",
            "conditions[0].field: unknown field 'Ownr' for zoho/Appointments__s (did you mean 'Owner'?)",
        ),
        ("source: zoho", "source: salesforce", "source: unknown source 'salesforce' (known sources: hubspot, zoho)"),
        (
            "module: Appointments__s",
            "module: Appointment__s",
            "module: unknown module 'Appointment__s' for zoho (known modules: Appointments__s)",
        ),
        (
            "type: log_reschedule_history",
            "type: log_reschedule_histroy",
            "actions[0].type: unknown action type 'log_reschedule_histroy' (did you mean 'log_reschedule_history'?)",
        ),
        (
            "type: log_reschedule_history",
            "type: send_email",
            "actions[0].type: unknown action type 'send_email' "
            "(known types: add_note, log_reschedule_history, notify, update_record)",
        ),
        (
            "type: log_reschedule_history",
            "type: log_reschedule_history\n        with: {reason: Sometimes}",
            "actions[0].with.reason: must be 'By Customer' or 'By Team', not 'Sometimes'",
        ),
        (
            "type: log_reschedule_history",
            f"type: log_reschedule_history\n        with: {{note: {'n' * 2001}}}",
            "actions[0].with.note: must have at most 2000 characters",
        ),
        (
            "type: log_reschedule_history",
            "type: log_reschedule_history\n        with: {note: ''}",
            "actions[0].with.note: must not be empty",
        ),
        (
            "type: log_reschedule_history",
            "type: log_reschedule_history\n        with: {reasons: By Team}",
            "actions[0].with: unknown key 'reasons' (did you mean 'reason'?)",
        ),
        (
            "type: log_reschedule_history",
            "type: log_reschedule_history\n        with: [By Team]",
            "actions[0].with: must be a mapping (key: value), not a list",
        ),
        ("    conditions:", "    condition:", "unknown key 'condition' (did you mean 'conditions'?)"),
        (
            "    module: Appointments__s\n",
            "    module: Appointments__s\n    priority: 1\n",
            "unknown key 'priority' (allowed: name, description, source, module, when, conditions, enabled, actions)",
        ),
        ("        not_in:", "        not-in:", "conditions[0]: unknown key 'not-in' (did you mean 'not_in'?)"),
        ("    source: zoho\n", "", "source: is required"),
        ("[Appointment_Start_Time]", "[]", "when.changed: must not be empty"),
        (
            "[Appointment_Start_Time]",
            "[Owner.id]",
            "when.changed[0]: 'Owner.id' is not a field API name (no spaces, no '.')",
        ),
        ("      - type: log_reschedule_history\n", "      []\n", "actions: must not be empty"),
        (
            "        not_in: [Cancelled]",
            "        not_in: [Cancelled]\n        equals: Scheduled",
            "conditions[0]: needs exactly one operator with a value, out of: equals, not_equals, in, not_in, is_set, "
            "less_than, greater_than (found equals, not_in)",
        ),
        (
            "        not_in: [Cancelled]",
            "        equals:",
            "conditions[0]: needs exactly one operator with a value, out of: equals, not_equals, in, not_in, is_set, "
            "less_than, greater_than",
        ),
        (
            "[Cancelled]",
            "[Cancelled, [Completed]]",
            "conditions[0].not_in[1]: must be a string, number or boolean, not list",
        ),
        ("[Cancelled]", "[]", "conditions[0].not_in: must not be empty"),
        (
            "        not_in: [Cancelled]",
            "        is_set: maybe",
            "conditions[0].is_set: must be a valid boolean, not 'maybe'",
        ),
        (
            "field: Status",
            "field: Owner..id",
            "conditions[0].field: 'Owner..id' is not a field API name or a dotted path such as 'Owner.id'",
        ),
        (
            "    source: zoho\n",
            "    source: zoho\n    enabled: sometimes\n",
            "enabled: must be a valid boolean, not 'sometimes'",
        ),
        (
            "    source: zoho\n",
            "    source: zoho\n    description: [a]\n",
            "description: must be a valid string, not a list",
        ),
    ],
)
def test_each_mistake_gives_one_exact_problem(old: str, new: str, problem: str) -> None:
    assert problems(edited(old, new)) == [f"{RULE}: {problem}"]


def test_a_misspelt_required_key_is_both_unknown_and_missing() -> None:
    assert problems(edited("      changed:", "      changes:")) == [
        f"{RULE}: when.changed: is required",
        f"{RULE}: when: unknown key 'changes' (did you mean 'changed'?)",
    ]


def test_a_rule_without_a_usable_name_is_named_by_position() -> None:
    text = VALID + "  - name: Not Valid\n  - source: zoho\n  - just text\n"

    assert problems(text) == [
        "rules/bad.yaml: rule 'Not Valid' (rules[1]): name: must start with a lowercase letter or digit and use only "
        "a-z, 0-9, '_' and '-'",
        "rules/bad.yaml: rule 'Not Valid' (rules[1]): source: is required",
        "rules/bad.yaml: rule 'Not Valid' (rules[1]): module: is required",
        "rules/bad.yaml: rule 'Not Valid' (rules[1]): when: is required",
        "rules/bad.yaml: rule 'Not Valid' (rules[1]): actions: is required",
        "rules/bad.yaml: rules[2]: name: is required",
        "rules/bad.yaml: rules[2]: module: is required",
        "rules/bad.yaml: rules[2]: when: is required",
        "rules/bad.yaml: rules[2]: actions: is required",
        "rules/bad.yaml: rules[3]: must be a mapping (key: value), not 'just text'",
    ]


def test_every_problem_in_every_rule_is_reported() -> None:
    second = VALID.split("rules:\n", 1)[1].replace("zoho-log", "second").replace("Status", "Stat")
    text = edited("[Appointment_Start_Time]", "[Xyzzy]") + second

    assert problems(text) == [
        f"{RULE}: when.changed[0]: unknown field 'Xyzzy' for zoho/Appointments__s",
        "rules/bad.yaml: rule 'second' (rules[1]): conditions[0].field: unknown field 'Stat' for zoho/Appointments__s "
        "(did you mean 'Status'?)",
    ]


SEVERAL = """\
version: 1
rules:
  - name: zoho-log
    source: zoho
    module: Appointments__s
    priority: 1
    when:
      changed: [Appointment_Start_Tme, Owner.id]
    conditions:
      - field: Stauts
        equals: Scheduled
        in: [Confirmed]
      - field: Owner..id
        is_set: true
        equals: x
      - field: Status
        not-in: [Cancelled]
      - {field: Status, in: [a], equals: b, foo: 1}
    actions:
      - type: log_reschedule_histroy
      - type: log_reschedule_history
        with: {reason: Sometimes, notes: x}
        wth: 1
  - name: second
    source: hubspot
    module: apointments
    when: {changed: x}
    enabled: maybe
    actions:
      - type: log_reschedule_history
        with: {reason: Never}
  - name: third
    module: Appointments__s
    when: {changed: [Status]}
    conditions:
      - {field: Status, equals: [a]}
    actions:
      - {type: send_email, with: {to: x}}
"""

OPERATOR = (
    "needs exactly one operator with a value, out of: equals, not_equals, in, not_in, is_set, less_than, greater_than"
)


def test_an_unknown_key_hides_none_of_the_rules_other_problems() -> None:
    text = edited("    module: Appointments__s\n", "    module: Appointments__s\n    priority: 1\n").replace(
        "[Appointment_Start_Time]", "[Appointment_Start_Tme]"
    )

    assert problems(text) == [
        f"{RULE}: when.changed[0]: unknown field 'Appointment_Start_Tme' for zoho/Appointments__s "
        "(did you mean 'Appointment_Start_Time'?)",
        f"{RULE}: unknown key 'priority' (allowed: name, description, source, module, when, conditions, enabled, "
        "actions)",
    ]


def test_every_problem_of_every_rule_is_listed_in_document_order() -> None:
    second = "rules/bad.yaml: rule 'second' (rules[1])"
    third = "rules/bad.yaml: rule 'third' (rules[2])"

    assert problems(SEVERAL) == [
        f"{RULE}: when.changed[0]: unknown field 'Appointment_Start_Tme' for zoho/Appointments__s "
        "(did you mean 'Appointment_Start_Time'?)",
        f"{RULE}: when.changed[1]: 'Owner.id' is not a field API name (no spaces, no '.')",
        f"{RULE}: conditions[0].field: unknown field 'Stauts' for zoho/Appointments__s (did you mean 'Status'?)",
        f"{RULE}: conditions[0]: {OPERATOR} (found equals, in)",
        f"{RULE}: conditions[1].field: 'Owner..id' is not a field API name or a dotted path such as 'Owner.id'",
        f"{RULE}: conditions[1]: {OPERATOR} (found equals, is_set)",
        f"{RULE}: conditions[2]: unknown key 'not-in' (did you mean 'not_in'?)",
        f"{RULE}: conditions[3]: unknown key 'foo' "
        "(allowed: field, previous, equals, not_equals, in, not_in, is_set, less_than, greater_than)",
        f"{RULE}: conditions[3]: {OPERATOR} (found equals, in)",
        f"{RULE}: actions[0].type: unknown action type 'log_reschedule_histroy' "
        "(did you mean 'log_reschedule_history'?)",
        f"{RULE}: actions[1].with.reason: must be 'By Customer' or 'By Team', not 'Sometimes'",
        f"{RULE}: actions[1].with: unknown key 'notes' (did you mean 'note'?)",
        f"{RULE}: actions[1]: unknown key 'wth' (did you mean 'with'?)",
        f"{RULE}: unknown key 'priority' (allowed: name, description, source, module, when, conditions, enabled, "
        "actions)",
        f"{second}: module: unknown module 'apointments' for hubspot (known modules: appointments)",
        f"{second}: enabled: must be a valid boolean, not 'maybe'",
        f"{second}: actions[0].with.reason: must be 'By Customer' or 'By Team', not 'Never'",
        f"{third}: source: is required",
        f"{third}: conditions[0].equals: must be a string, number or boolean, not list",
        f"{third}: actions[0].type: unknown action type 'send_email' "
        "(known types: add_note, log_reschedule_history, notify, update_record)",
    ]


def test_the_order_is_the_same_on_every_run() -> None:
    assert problems(SEVERAL) == problems(SEVERAL)


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("{field: Status, not_in: [a], foo: 1}", "conditions[0]: unknown key 'foo'"),
        ("{field: Status, not_in: [a], equals: b}", f"conditions[0]: {OPERATOR} (found equals, not_in)"),
        ("{field: Status, is_set: maybe}", "conditions[0].is_set: must be a valid boolean, not 'maybe'"),
    ],
)
def test_a_condition_with_one_problem_still_gives_one_line(condition: str, problem: str) -> None:
    [line] = problems(edited("      - field: Status\n        not_in: [Cancelled]", f"      - {condition}"))

    assert line.startswith(f"{RULE}: {problem}")


def test_a_condition_without_an_operator_next_to_a_bad_field_gives_both() -> None:
    assert problems(edited("      - field: Status\n        not_in: [Cancelled]", "      - {field: Owner..id}")) == [
        f"{RULE}: conditions[0].field: 'Owner..id' is not a field API name or a dotted path such as 'Owner.id'",
        f"{RULE}: conditions[0]: {OPERATOR}",
    ]


def test_a_rule_that_fails_the_schema_finds_no_problem_in_its_well_formed_parts() -> None:
    # What salvage checks of a rule is what the schema path checks: a well-formed rule gives nothing more.
    for raw in parse_yaml((REPO / "rules" / "default.yaml").read_text())["rules"] + parse_yaml(VALID)["rules"]:
        assert salvage_problems(raw, ("rules", 0)) == []


@pytest.fixture
def zoho_contacts_only_action(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    registry = MappingProxyType(
        {
            "log_reschedule_history": ActionType(
                params=LogRescheduleHistoryParams, targets=frozenset({("zoho", "Contacts"), ("zoho", "Deals")})
            )
        }
    )
    monkeypatch.setattr(check, "ACTION_TYPES", registry)
    yield


@pytest.mark.usefixtures("zoho_contacts_only_action")
def test_an_action_used_on_a_module_it_does_not_support_is_an_error() -> None:
    assert problems(VALID) == [
        f"{RULE}: actions[0].type: action 'log_reschedule_history' cannot run on zoho/Appointments__s "
        "(it supports: zoho/Contacts, zoho/Deals)"
    ]


@pytest.mark.usefixtures("zoho_contacts_only_action")
def test_a_rule_with_an_unknown_key_still_has_its_actions_target_checked() -> None:
    assert problems(edited("    module: Appointments__s\n", "    module: Appointments__s\n    priority: 1\n")) == [
        f"{RULE}: actions[0].type: action 'log_reschedule_history' cannot run on zoho/Appointments__s "
        "(it supports: zoho/Contacts, zoho/Deals)",
        f"{RULE}: unknown key 'priority' (allowed: name, description, source, module, when, conditions, enabled, "
        "actions)",
    ]
