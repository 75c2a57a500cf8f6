"""Rule checks for issue 12: templates, `previous:`, reschedule.* fields, when.operation and the new actions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmflow.cli import main
from workers.rules import check
from workers.rules.load import RuleFileError, parse_rules
from workers.rules.model import AddNoteParams, NotifyParams, UpdateRecordParams
from workers.rules.registry import ACTION_TYPES

GOOD = """\
version: 1
rules:
  - name: late-moves
    source: zoho
    module: Appointments__s
    when: {changed: [Appointment_Start_Time]}
    conditions:
      - {field: reschedule.notice_hours, less_than: 24}
      - {previous: Status, not_in: [Cancelled]}
    actions:
      - type: notify
        with:
          url: https://hooks.example.com/services/T000/B000/XXXX
          secret_env: CRMFLOW_NOTIFY_SECRET
          text: "{{ record.Appointment_Name }} moved ({{ reschedule.notice_hours | round(1) }} h)"
      - type: update_record
        with:
          fields:
            Additional_Information: "Moved by {{ record.Modified_By.name }}"
      - type: add_note
        with:
          title: "Moved"
          content: "From {{ reschedule.old_start }} to {{ reschedule.new_start }}"
"""
RULE = "rules.yaml: rule 'late-moves' (rules[0])"


def problems(text: str) -> list[str]:
    with pytest.raises(RuleFileError) as raised:
        parse_rules(text, origin="rules.yaml")
    return raised.value.problems


def test_a_rule_with_every_new_part_is_accepted() -> None:
    [rule] = parse_rules(GOOD, origin="rules.yaml").rules

    notify, update, note = rule.actions
    assert notify.params == NotifyParams(
        url="https://hooks.example.com/services/T000/B000/XXXX",
        secret_env="CRMFLOW_NOTIFY_SECRET",
        text="{{ record.Appointment_Name }} moved ({{ reschedule.notice_hours | round(1) }} h)",
    )
    assert update.params == UpdateRecordParams(
        fields={"Additional_Information": "Moved by {{ record.Modified_By.name }}"}
    )
    assert isinstance(note.params, AddNoteParams)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "{{ record.Appointment_Name }} moved",
            "{{ record.Appointment_Nmae }} moved",
            "actions[0].with.text: unknown field record.Appointment_Nmae (did you mean 'Appointment_Name'?)",
        ),
        (
            "{{ record.Appointment_Name }} moved",
            "{{ recrod.Appointment_Name }} moved",
            "actions[0].with.text: unknown name 'recrod' (templates see: record, previous, change, reschedule, rule)",
        ),
        (
            "{{ record.Appointment_Name }} moved",
            "{{ record.Appointment_Name } moved",
            "actions[0].with.text: template syntax error: unexpected '}' (line 1)",
        ),
        (
            "Moved by {{ record.Modified_By.name }}",
            "Moved by {{ who }}",
            "actions[1].with.fields.Additional_Information: unknown name 'who' "
            "(templates see: record, previous, change, reschedule, rule)",
        ),
        (
            "Additional_Information:",
            "Additional_Info:",
            "actions[1].with.fields.Additional_Info: unknown field 'Additional_Info' for zoho/Appointments__s "
            "(did you mean 'Additional_Information'?)",
        ),
        (
            'content: "From {{ reschedule.old_start }}',
            'content: "From {{ reschedule.start }}',
            "actions[2].with.content: unknown name reschedule.start (reschedule has: old_start, new_start, "
            "notice_hours)",
        ),
        (
            'title: "Moved"',
            'title: "{{ rule.title }}"',
            "actions[2].with.title: unknown name rule.title (rule has: name, source, module)",
        ),
        (
            'title: "Moved"',
            'title: "{% if %}"',
            "actions[2].with.title: template syntax error: Expected an expression, got 'end of statement block' "
            "(line 1)",
        ),
        (
            "reschedule.notice_hours, less_than",
            "reschedule.notice, less_than",
            "conditions[0].field: unknown field 'reschedule.notice' (did you mean 'reschedule.notice_hours'?)",
        ),
        (
            "{previous: Status,",
            "{previous: Stauts,",
            "conditions[1].previous: unknown field 'Stauts' for zoho/Appointments__s (did you mean 'Status'?)",
        ),
        (
            "{previous: Status,",
            "{previous: reschedule.old_start,",
            "conditions[1].previous: 'reschedule.old_start' has no value before the change: test it with 'field:' "
            "(reschedule.old_start, reschedule.new_start, reschedule.notice_hours)",
        ),
        (
            "less_than: 24}",
            "less_than: soon}",
            "conditions[0].less_than: 'soon' is neither a number nor an ISO 8601 "
            "date-time such as '2027-01-12T10:00:00Z'",
        ),
        (
            "url: https://hooks.example.com/services/T000/B000/XXXX",
            "url: hooks.example.com/services",
            "actions[0].with.url: 'hooks.example.com/services' is not an http(s) URL such as "
            "'https://hooks.example.com/...'",
        ),
        (
            "secret_env: CRMFLOW_NOTIFY_SECRET",
            "secret_env: whsec_abc-def",
            "actions[0].with.secret_env: 'whsec_abc-def' is not an environment variable name (letters, digits and '_')",
        ),
        (
            '          fields:\n            Additional_Information: "Moved by {{ record.Modified_By.name }}"',
            "          fields: {}",
            "actions[1].with.fields: must not be empty",
        ),
        (
            'title: "Moved"',
            "title: 3",
            "actions[2].with.title: must be a valid string, not 3",
        ),
        (
            "when: {changed: [Appointment_Start_Time]}",
            "when: {operation: [remove]}",
            "when.operation[0]: must be 'insert', 'update' or 'delete', not 'remove'",
        ),
        ("when: {changed: [Appointment_Start_Time]}", "when: {}", "when.changed: is required"),
    ],
)
def test_each_mistake_names_file_rule_and_field(old: str, new: str, problem: str) -> None:
    assert old in GOOD
    assert problems(GOOD.replace(old, new)) == [f"{RULE}: {problem}"]


def test_a_rule_that_fires_on_deletes_only_cannot_act_on_the_record() -> None:
    text = GOOD.replace("when: {changed: [Appointment_Start_Time]}", "when: {operation: delete}")
    text = text.replace("      - {field: reschedule.notice_hours, less_than: 24}\n", "")

    gone = (
        "acts on the record, which is gone when a rule fires on deletes only (when.operation: [delete]); use "
        "notify, or add insert or update to when.operation"
    )
    assert problems(text) == [
        f"{RULE}: actions[1].type: action 'update_record' {gone}",
        f"{RULE}: actions[2].type: action 'add_note' {gone}",
    ]
    assert parse_rules(text.replace("operation: delete", "operation: [update, delete]"), origin="rules.yaml").rules


def test_the_new_action_types_run_on_every_module_of_every_source() -> None:
    for name in ("notify", "update_record", "add_note"):
        assert ACTION_TYPES[name].targets >= {("zoho", "Appointments__s"), ("hubspot", "appointments")}
    assert ACTION_TYPES["log_reschedule_history"].targets == {("zoho", "Appointments__s"), ("hubspot", "appointments")}


def test_field_catalogue_is_the_modules() -> None:
    assert "Appointment_Start_Time" in (check.field_catalogue("zoho", "Appointments__s") or ())
    assert "hs_appointment_start" in (check.field_catalogue("hubspot", "appointments") or ())
    assert check.field_catalogue("zoho", "Contacts") is None
    assert check.field_catalogue("nope", "appointments") is None


def test_a_rule_broken_elsewhere_still_has_its_templates_and_previous_fields_checked() -> None:
    text = GOOD.replace("    source: zoho\n", "    source: zoho\n    priority: high\n")
    text = text.replace("{previous: Status,", "{previous: Stauts,").replace("record.Appointment_Name", "record.Nme")

    assert problems(text) == [
        f"{RULE}: conditions[1].previous: unknown field 'Stauts' for zoho/Appointments__s (did you mean 'Status'?)",
        f"{RULE}: actions[0].with.text: unknown field record.Nme",
        f"{RULE}: unknown key 'priority' (allowed: name, description, source, module, when, conditions, enabled, "
        "actions)",
    ]


def test_crmflow_rules_check_names_file_rule_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("{{ record.Appointment_Name }}", "{{ record.Appointment_Name | nope }}"))

    done = CliRunner().invoke(main, ["rules", "check", str(bad)])

    assert done.exit_code == 1
    assert f"{bad}: rule 'late-moves' (rules[0]): actions[0].with.text: unknown filter 'nope'" in done.output
