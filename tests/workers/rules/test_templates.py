"""Templates: sandboxed rendering with undefined names as errors, and the problems `rules check` reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from workers.errors import ActionNotApplicableError
from workers.rules.templates import TemplateError, render, template_fields, template_problems

FIELDS = frozenset({"Appointment_Name", "Status", "Owner", "Appointment_Start_Time"})
START = datetime(2027, 1, 12, 10, 0, tzinfo=UTC)


def variables(**extra: Any) -> dict[str, Any]:
    return {
        "record": {"Appointment_Name": "Boiler Service", "Status": "Scheduled", "Owner": {"id": "42"}, "Note": None},
        "previous": {"Status": "Overdue"},
        "change": {"Status": {"old": "Overdue", "new": "Scheduled"}},
        "reschedule": {"old_start": START, "new_start": START + timedelta(hours=4), "notice_hours": 23.456},
        "rule": {"name": "late-moves", "source": "zoho", "module": "Appointments__s"},
    } | extra


def test_renders_fields_lookups_filters_and_rule() -> None:
    text = (
        "{{ record.Appointment_Name }} ({{ record.Owner.id }}) was {{ previous.Status }}, "
        "{{ change.Status.old }} -> {{ change['Status'].new }}; {{ reschedule.notice_hours | round(1) }} h; "
        "{{ rule.name }}"
    )

    assert render(text, variables()) == "Boiler Service (42) was Overdue, Overdue -> Scheduled; 23.5 h; late-moves"


def test_datetimes_render_as_iso_8601_and_none_as_nothing() -> None:
    text = "{{ reschedule.old_start }} to {{ reschedule.new_start.astimezone(tz) }}[{{ record.Note }}]"
    paris = timezone(timedelta(hours=1))

    assert render(text, variables(tz=paris)) == "2027-01-12T10:00:00+00:00 to 2027-01-12T15:00:00+01:00[]"


def test_a_missing_field_or_name_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateError, match="Nope"):
        render("{{ record.Nope }}", variables())
    with pytest.raises(TemplateError, match="'unknown' is undefined"):
        render("{{ unknown }}", variables())
    with pytest.raises(TemplateError):
        render("{{ reschedule.old_start }}", variables(reschedule=None))


def test_a_template_error_is_final_and_quotes_no_value() -> None:
    with pytest.raises(TemplateError) as raised:
        render("{{ record.Appointment_Name | round(1) }}", variables())

    assert isinstance(raised.value, ActionNotApplicableError)  # jobs.FINAL_ERRORS: a dead letter, no retry
    assert raised.value.code == "TEMPLATE"
    assert "Boiler" not in str(raised.value)


def test_a_syntax_error_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="syntax error"):
        render("{{ record.Status ", variables())


@pytest.mark.parametrize(
    "text",
    [
        "{{ record.__class__ }}",
        "{{ record.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ rule.name.__class__.__base__ }}",
        "{{ reschedule.old_start.__reduce_ex__(2) }}",
    ],
)
def test_the_sandbox_blocks_internal_attributes(text: str) -> None:
    with pytest.raises(TemplateError):
        render(text, variables())


def test_the_sandbox_blocks_changing_the_variables() -> None:
    with pytest.raises(TemplateError):
        render("{{ record.update({'Status': 'x'}) }}", variables())


def test_no_html_escaping() -> None:
    assert render("{{ record.Appointment_Name }}", variables(record={"Appointment_Name": "<A & B>"})) == "<A & B>"


def test_a_replayed_records_own_refusal_passes_through() -> None:
    class Refusing(dict[str, Any]):
        def __getitem__(self, name: str) -> Any:
            raise ActionNotApplicableError("the dead letter does not keep field 'Status'")

    with pytest.raises(ActionNotApplicableError) as raised:
        render("{{ record.Status }}", variables(record=Refusing()))

    assert not isinstance(raised.value, TemplateError)


def test_compiled_templates_are_reused() -> None:
    text = "{{ rule.name }} cached"
    render(text, variables())
    render(text, variables())

    from workers.rules.templates import _compiled

    assert _compiled.cache_info().hits >= 1


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("plain text", []),
        ("{{ record.Status }} {{ previous.Owner.id }} {{ change.Status.old }} {{ rule.module }}", []),
        ("{{ reschedule.old_start }} {{ reschedule['notice_hours'] }}", []),
        ("{% if reschedule %}{{ reschedule.new_start }}{% endif %}", []),
        ("{% for name, moved in change.items() %}{{ name }}{% endfor %}", ["unknown field change.items"]),
        ("{% set x = record.Status %}{{ x }}", []),
        ("{{ record.Stauts }}", ["unknown field record.Stauts (did you mean 'Status'?)"]),
        ("{{ previous['Xyzzy'] }}", ["unknown field previous.Xyzzy"]),
        ("{{ recrod.Status }}", ["unknown name 'recrod' (templates see: record, previous, change, reschedule, rule)"]),
        (
            "{{ reschedule.notice }}",
            ["unknown name reschedule.notice (reschedule has: old_start, new_start, notice_hours)"],
        ),
        ("{{ rule.owner }}", ["unknown name rule.owner (rule has: name, source, module)"]),
        ("{{ record.Status }", ["template syntax error: unexpected '}' (line 1)"]),
        ("{{ record.Status | shout }}", ["unknown filter 'shout'"]),
        ("{% if record.Status is loud %}{% endif %}", ["unknown test 'loud'"]),
        ("{{ record.Status | upper }}{{ record.Status is string }}", []),
        (
            "{% if record.Status %}",
            [
                "template syntax error: Unexpected end of template. Jinja was looking for the "
                "following tags: 'elif' or 'else' or 'endif'. The innermost block that needs "
                "to be closed is 'if'. (line 1)"
            ],
        ),
    ],
)
def test_problems(text: str, problems: list[str]) -> None:
    assert template_problems(text, FIELDS) == problems


def test_a_name_the_template_sets_itself_shadows_a_variable() -> None:
    assert template_problems("{% set record = {'Anything': 1} %}{{ record.Anything }}", FIELDS) == []


def test_fields_named_by_a_template() -> None:
    text = "{{ record.Status }} {{ previous['Owner'].id }} {{ change.Appointment_Name }} {{ reschedule.old_start }}"

    assert template_fields(text) == {"Status", "Owner", "Appointment_Name"}
    assert template_fields("{{ broken") == frozenset()


@pytest.mark.parametrize(
    ("text", "load"),
    [
        ('{% include "footer.txt" %}', "include"),
        ('{% import "macros.txt" as m %}{{ m }}', "import"),
        ('{% from "macros.txt" import greet %}{{ greet }}', "from ... import"),
        ('{% extends "base.txt" %}', "extends"),
    ],
)
def test_loading_another_template_is_a_problem_not_a_dead_letter_later(text: str, load: str) -> None:
    # Rules have no templates to load, so these would fail on every change once rendered.
    assert f"{{% {load} %}} is not available: a rule's template cannot load another template" in template_problems(
        text, FIELDS
    )
