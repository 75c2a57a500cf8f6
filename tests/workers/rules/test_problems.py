"""Every kind of mistake in a rule gives one exact problem line: file, rule, field path, what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from types import MappingProxyType

import pytest

from workers.rules import check
from workers.rules.load import RuleFileError, parse_rules
from workers.rules.model import LogRescheduleHistoryParams
from workers.rules.registry import ActionType

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
            "actions[0].type: unknown action type 'send_email' (known types: log_reschedule_history)",
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
            "conditions[0]: needs exactly one operator with a value, out of: equals, not_equals, in, not_in, is_set "
            "(found equals, not_in)",
        ),
        (
            "        not_in: [Cancelled]",
            "        equals:",
            "conditions[0]: needs exactly one operator with a value, out of: equals, not_equals, in, not_in, is_set",
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
