"""rules/examples/: each file passes the real `crmflow rules check`, alone and as a directory; issue 12's example is
there verbatim; and every template of every example renders on the sandbox's seed appointments."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmflow.cli import main
from sandbox.hubspot.seed import seed_appointments as hubspot_seed
from sandbox.zoho.render import render_record
from sandbox.zoho.seed import seed_appointments as zoho_seed
from tests.processes import REPO
from workers import sources
from workers.diff import Change, FieldChange
from workers.rules.context import RuleContext
from workers.rules.load import load_rules, parse_rules
from workers.rules.model import OPERATORS, templates_of
from workers.rules.registry import ACTION_PARAMS
from workers.rules.templates import RESCHEDULE_KEYS, VARIABLES, render

EXAMPLES = REPO / "rules" / "examples"
FILES = sorted(EXAMPLES.glob("*.yaml"))
CRMFLOW = REPO / ".venv" / "bin" / "crmflow"
NOW = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)


def rules_check(path: Path) -> subprocess.CompletedProcess[str]:
    """The real command, in the repository, as README and docs/rules.md show it."""
    command = [str(CRMFLOW), "rules", "check", str(path.relative_to(REPO))]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_one_example_per_use() -> None:
    assert [path.name for path in FILES] == [
        "issue-12.yaml",
        "note-cancellations.yaml",
        "notify-late-moves.yaml",
        "operation-triggers.yaml",
        "stamp-who-moved.yaml",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_crmflow_rules_check_accepts_each_example(path: Path) -> None:
    done = rules_check(path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(rf"rules/examples/{path.name}: ok, \d+ rules?\n", done.stdout)


@pytest.mark.slow
def test_crmflow_rules_check_accepts_the_directory() -> None:
    done = rules_check(EXAMPLES)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "rules/examples: ok, 10 rules\n"


@pytest.mark.parametrize("path", [*FILES, EXAMPLES], ids=lambda path: path.name)
def test_rules_check_in_process_accepts_each_example_and_the_directory(path: Path) -> None:
    # The same command without a process of its own, for `make test-fast`.
    done = CliRunner().invoke(main, ["rules", "check", str(path)])

    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"{path}: ok, ")


def test_every_example_is_commented() -> None:
    for path in FILES:
        assert path.read_text().startswith("# "), path.name


def test_the_issue_example_is_there_verbatim() -> None:
    issue = """\
version: 1
rules:
  - name: tell-team-about-late-moves
    source: zoho
    module: Appointments__s
    when: {changed: [Appointment_Start_Time]}
    conditions:
      - {field: Reschedule_Reason, equals: By Customer}
      - {field: reschedule.notice_hours, less_than: 24}
    actions:
      - type: notify
        with:
          url: https://hooks.example.com/services/T000/B000/XXXX
          secret_env: CRMFLOW_NOTIFY_SECRET
          text: "{{ record.Appointment_Name }} moved from {{ reschedule.old_start }} to {{ reschedule.new_start }} \
({{ reschedule.notice_hours | round(1) }} h notice)"
      - type: update_record
        with:
          fields:
            Reschedule_Note: "Moved with {{ reschedule.notice_hours | round(1) }} h notice"
  - name: note-cancellations
    source: hubspot
    module: appointments
    when: {changed: [hs_appointment_status]}
    conditions:
      - {field: hs_appointment_status, equals: CANCELED}
      - {previous: hs_appointment_status, not_equals: CANCELED}
    actions:
      - type: add_note
        with:
          title: Cancelled
          content: "Cancelled; it was due {{ previous.hs_appointment_start }}."
"""
    text = (EXAMPLES / "issue-12.yaml").read_text()
    without_comments = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))

    assert without_comments == issue


def _seed(source: str) -> dict[str, Any]:
    """A seed appointment of the sandbox, as its CRM's API gives its fields."""
    if source == "zoho":
        return render_record(zoho_seed(NOW)[0], UTC)
    return dict(hubspot_seed(NOW)[0].values)


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_template_renders_on_a_seed_appointment(path: Path) -> None:
    for rule in load_rules(path).rules:
        module = sources.module_of(rule.source, rule.module)
        assert module is not None and module.start_field is not None
        record = _seed(rule.source)
        start = module.start_field
        old_start = (NOW + timedelta(hours=20)).isoformat()
        # Every trigger field changed (from nothing), and the start moved.
        moved = {name: FieldChange(None, record.get(name)) for name in rule.when.changed}
        moved[start] = FieldChange(old_start, record[start])
        previous = record | {name: change.old for name, change in moved.items()}
        change = Change(fields=moved, since=NOW - timedelta(days=1))
        context = RuleContext.build(
            source=rule.source,
            module=rule.module,
            operation="update",
            record=record,
            previous=previous,
            change=change,
            now=NOW,
            start_field=start,
            rule=rule.name,
        )
        for action in rule.actions:
            for where, text in templates_of(action.params):
                rendered = render(text, context.variables())
                assert rendered.strip(), (rule.name, where)


def _readme_rules_section() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Rules\n(.*?)(?=^## )", readme, flags=re.MULTILINE | re.DOTALL)
    assert match is not None, "README.md has no Rules section"
    return match.group(1)


def test_the_readme_rules_example_is_the_issue_example_and_passes_the_check() -> None:
    [block] = re.findall(r"```yaml\n(.*?)```", _readme_rules_section(), flags=re.DOTALL)
    example = (EXAMPLES / "issue-12.yaml").read_text()

    assert block == "".join(line for line in example.splitlines(keepends=True) if not line.startswith("#"))
    assert len(parse_rules(block, origin="README.md").rules) == 2


@pytest.mark.parametrize("document", ["README.md", "docs/rules.md"])
def test_every_action_operator_and_template_variable_is_documented(document: str) -> None:
    text = _readme_rules_section() if document == "README.md" else (REPO / document).read_text(encoding="utf-8")
    names = [*ACTION_PARAMS, *OPERATORS, *VARIABLES, "previous:", "operation: [insert, update, delete]"]
    names += [f"reschedule.{key}" for key in RESCHEDULE_KEYS]

    assert [name for name in names if f"`{name}" not in text] == []
