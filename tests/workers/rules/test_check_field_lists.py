"""Known fields (check.field_catalogue): the built-in catalogue, and with a CRM field list its custom fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers import sources
from workers.rules.check import NO_EXTRA_FIELDS, field_catalogue
from workers.rules.load import RuleFileError, load_rules, parse_rules

CUSTOM = """\
version: 1
rules:
  - name: zoho-custom
    source: zoho
    module: Appointments__s
    when:
      changed: [Visit_Priority__c]
    conditions:
      - field: Visit_Priority__c
        equals: High
    actions:
      - type: log_reschedule_history
"""
EXTRA = {("zoho", "Appointments__s"): frozenset({"Visit_Priority__c", "Appointment_Name"})}


def problems(text: str, extra: dict[tuple[str, str], frozenset[str]] | None = None) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, origin="r.yaml", extra_fields=extra or NO_EXTRA_FIELDS)
    return caught.value.problems


def test_the_catalogue_is_the_built_in_one_offline_and_grows_by_the_crms_list() -> None:
    zoho = sources.module_of("zoho", "Appointments__s")
    assert zoho is not None
    assert field_catalogue("zoho", "Appointments__s") == zoho.catalogue
    assert field_catalogue("zoho", "Appointments__s", EXTRA) == zoho.catalogue | {"Visit_Priority__c"}
    # Another module's list adds nothing here; an unknown module has no catalogue.
    assert field_catalogue("zoho", "Appointments__s", {("hubspot", "appointments"): frozenset({"x"})}) == (
        zoho.catalogue
    )
    assert field_catalogue("zoho", "Leads", EXTRA) is None


def test_a_custom_field_is_unknown_offline() -> None:
    assert problems(CUSTOM) == [
        "r.yaml: rule 'zoho-custom' (rules[0]): when.changed[0]: unknown field 'Visit_Priority__c' for "
        "zoho/Appointments__s",
        "r.yaml: rule 'zoho-custom' (rules[0]): conditions[0].field: unknown field 'Visit_Priority__c' for "
        "zoho/Appointments__s",
    ]


def test_a_custom_field_the_crm_reports_is_accepted() -> None:
    [rule] = parse_rules(CUSTOM, origin="r.yaml", extra_fields=EXTRA).rules
    assert rule.when.changed == ("Visit_Priority__c",)


def test_a_misspelt_custom_field_is_still_refused_with_a_suggestion_from_the_merged_list() -> None:
    text = CUSTOM.replace("changed: [Visit_Priority__c]", "changed: [Visit_Priorty__c]")
    assert problems(text, EXTRA) == [
        "r.yaml: rule 'zoho-custom' (rules[0]): when.changed[0]: unknown field 'Visit_Priorty__c' for "
        "zoho/Appointments__s (did you mean 'Visit_Priority__c'?)"
    ]


def test_a_rule_that_fails_the_schema_has_its_fields_checked_against_the_merged_list_too() -> None:
    # `actions` missing: the schema refuses the rule; salvage still checks its fields, with the CRM's list.
    text = CUSTOM.replace("    actions:\n      - type: log_reschedule_history\n", "")
    found = problems(text, EXTRA)
    assert not any("Visit_Priority__c" in line for line in found)
    assert problems(text.replace("field: Visit_Priority__c", "field: Visit_Prio__c"), EXTRA) == [
        "r.yaml: rule 'zoho-custom' (rules[0]): conditions[0].field: unknown field 'Visit_Prio__c' for "
        "zoho/Appointments__s (did you mean 'Visit_Priority__c'?)",
        "r.yaml: rule 'zoho-custom' (rules[0]): actions: is required",
    ]


def test_load_rules_passes_the_lists_to_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CUSTOM)
    assert [rule.name for rule in load_rules(tmp_path, extra_fields=EXTRA).rules] == ["zoho-custom"]
    with pytest.raises(RuleFileError):
        load_rules(tmp_path)


TEMPLATES = """\
version: 1
rules:
  - name: zoho-custom-actions
    source: zoho
    module: Appointments__s
    when: {changed: [Appointment_Start_Time]}
    actions:
      - type: notify
        with:
          url: https://hooks.example.com/x
          text: "{{ record.Visit_Priority__c }} moved"
      - type: update_record
        with:
          fields: {Visit_Priority__c: "{{ previous.Visit_Priority__c }}"}
"""


def test_templates_and_update_record_fields_know_the_crms_custom_fields_too() -> None:
    [rule] = parse_rules(TEMPLATES, origin="r.yaml", extra_fields=EXTRA).rules
    assert [action.type for action in rule.actions] == ["notify", "update_record"]
    offline = problems(TEMPLATES)
    assert len(offline) == 3 and all("Visit_Priority__c" in line for line in offline)
