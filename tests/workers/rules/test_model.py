"""The rule model: watched fields, conditions, action parameters, immutability."""

from __future__ import annotations

import pydantic
import pytest

from workers.rules.load import parse_rules
from workers.rules.model import ActionSpec, Condition, LogRescheduleHistoryParams, RuleSet

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
      - field: Owner.id
        is_set: true
    actions:
      - type: log_reschedule_history
  - name: notes
    source: zoho
    module: Appointments__s
    when:
      changed: Reschedule_Note
    conditions:
      - field: Appointment_For.module.api_name
        equals: Contacts
    actions:
      - type: log_reschedule_history
  - name: switched-off
    source: zoho
    module: Appointments__s
    when:
      changed: Duration
    conditions:
      - field: Location
        is_set: true
    actions:
      - type: log_reschedule_history
    enabled: false
"""


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return parse_rules(RULES, origin="rules.yaml")


def test_watched_fields_are_the_trigger_and_condition_fields_of_enabled_rules(ruleset: RuleSet) -> None:
    assert ruleset.watched_fields("zoho", "Appointments__s") == {
        "Appointment_Start_Time",
        "Rescheduled_To",
        "Status",
        "Owner",
        "Reschedule_Note",
        "Appointment_For",
    }


def test_no_fields_are_watched_for_other_sources_or_modules(ruleset: RuleSet) -> None:
    assert ruleset.watched_fields("zoho", "Contacts") == frozenset()
    assert ruleset.watched_fields("hubspot", "Appointments__s") == frozenset()
    assert RuleSet().watched_fields("zoho", "Appointments__s") == frozenset()


def test_the_fields_update_record_writes_are_watched_so_its_own_write_is_recognised() -> None:
    text = (
        "version: 1\nrules:\n  - name: stamp\n    source: zoho\n    module: Appointments__s\n"
        "    when: {operation: update}\n    actions:\n      - type: update_record\n        with:\n"
        "          fields:\n            Additional_Information: 'seen {{ record.Status }}'\n"
    )

    rules = parse_rules(text, origin="rules.yaml")

    assert rules.watched_fields("zoho", "Appointments__s") == {"Additional_Information", "Status"}


def test_a_single_trigger_field_is_a_one_item_list(ruleset: RuleSet) -> None:
    assert ruleset.rules[1].when.changed == ("Reschedule_Note",)


def test_action_params_are_the_action_types_model(ruleset: RuleSet) -> None:
    spec = ruleset.rules[0].actions[0]

    assert isinstance(spec, ActionSpec)
    assert isinstance(spec.params, LogRescheduleHistoryParams)


def test_empty_conditions_and_with_mean_none() -> None:
    text = (
        "version: 1\nrules:\n  - name: a\n    source: zoho\n    module: Appointments__s\n"
        "    when: {changed: Status}\n    conditions:\n    actions:\n      - type: log_reschedule_history\n"
        "        with:\n"
    )

    rule = parse_rules(text, origin="rules.yaml").rules[0]

    assert rule.conditions == ()
    assert rule.actions[0].params == LogRescheduleHistoryParams()


def test_the_model_is_immutable(ruleset: RuleSet) -> None:
    with pytest.raises(pydantic.ValidationError):
        ruleset.rules[0].enabled = False  # type: ignore[misc]
    assert hash(ruleset) == hash(parse_rules(RULES, origin="other.yaml"))


def test_a_condition_survives_a_round_trip() -> None:
    condition = Condition.model_validate({"field": "Status", "in": ["Scheduled", 1, 2.5, True]})

    assert (condition.operator, condition.operand) == ("in", ("Scheduled", 1, 2.5, True))
    assert Condition.model_validate(condition.model_dump(by_alias=True)) == condition
    assert Condition.model_validate(condition.model_dump()) == condition


def test_yaml_scalars_keep_their_type_in_conditions() -> None:
    text = RULES.replace("not_in: [Cancelled]", "in: [Yes, no, On, 'true', true, 010, 1.5, 2024-05-01, 10:30]")

    condition = parse_rules(text, origin="rules.yaml").rules[0].conditions[0]

    assert condition.operand == ("Yes", "no", "On", "true", True, 10, 1.5, "2024-05-01", "10:30")
