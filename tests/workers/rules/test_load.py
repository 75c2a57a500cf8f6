"""Loading rule files: the default file, directories, unreadable files, YAML errors and the error type."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from workers.rules.load import RuleFileError, load_rules, parse_rules
from workers.rules.model import LogRescheduleHistoryParams

REPO = Path(__file__).resolve().parents[3]

ONE_RULE = """\
version: 1
rules:
  - name: {name}
    source: zoho
    module: Appointments__s
    when:
      changed: Status
    actions:
      - type: log_reschedule_history
"""


def problems_of(path: Path | str) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_rules(path)
    return caught.value.problems


def test_default_file_loads() -> None:
    ruleset = load_rules(REPO / "rules" / "default.yaml")

    [rule, hubspot] = ruleset.rules
    assert (hubspot.name, hubspot.source, hubspot.module) == ("hubspot-log-reschedules", "hubspot", "appointments")
    assert hubspot.when.changed == ("hs_appointment_start",)
    assert hubspot.conditions == ()
    assert [action.type for action in hubspot.actions] == ["log_reschedule_history"]
    assert rule.name == "zoho-log-reschedules"
    assert (rule.source, rule.module, rule.enabled) == ("zoho", "Appointments__s", True)
    assert rule.when.changed == ("Appointment_Start_Time",)
    assert [(c.field, c.operator, c.operand) for c in rule.conditions] == [("Status", "not_in", ("Cancelled",))]
    [action] = rule.actions
    assert action.type == "log_reschedule_history"
    assert isinstance(action.params, LogRescheduleHistoryParams)
    assert (action.params.reason, action.params.note) == (None, None)


def test_default_file_behaves_as_before_issue_12() -> None:
    # No rule of it names an operation: they fire on inserts and updates, never on a delete, and watch the
    # fields they watched before (nothing from templates or previous:, which it does not use).
    ruleset = load_rules(REPO / "rules" / "default.yaml")

    assert [rule.when.operation for rule in ruleset.rules] == [(), ()]
    assert [rule.when.operations() for rule in ruleset.rules] == [{"insert", "update"}] * 2
    assert not ruleset.fires_on("zoho", "Appointments__s", "delete")
    assert not ruleset.fires_on("hubspot", "appointments", "delete")
    assert ruleset.watched_fields("zoho", "Appointments__s") == {"Appointment_Start_Time", "Status"}
    assert ruleset.watched_fields("hubspot", "appointments") == {"hs_appointment_start"}


def test_default_file_is_the_only_rule_file() -> None:
    # rules/examples/ is a directory of examples: RULES_PATH=rules loads the files of rules/ only.
    assert sorted(p.name for p in (REPO / "rules").iterdir() if p.is_file()) == ["default.yaml"]
    assert sorted(p.name for p in (REPO / "rules").iterdir() if p.is_dir()) == ["examples"]
    assert load_rules(REPO / "rules") == load_rules(REPO / "rules" / "default.yaml")


def test_a_directory_loads_every_yaml_file_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text(ONE_RULE.format(name="second"))
    (tmp_path / "a.yaml").write_text(ONE_RULE.format(name="first"))
    (tmp_path / "notes.txt").write_text("not a rule file")
    (tmp_path / ".editor-backup.yaml").write_text("{")
    (tmp_path / "sub.yaml").mkdir()

    ruleset = load_rules(tmp_path)

    assert [rule.name for rule in ruleset.rules] == ["first", "second"]


def test_a_directory_reports_the_problems_of_all_its_files_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ONE_RULE.format(name="same"))
    (tmp_path / "b.yaml").write_text(ONE_RULE.format(name="same").replace("changed: Status", "changed: Stat"))
    (tmp_path / "c.yaml").write_text("version: 1\nrules:\n  - [")

    with pytest.raises(RuleFileError) as caught:
        load_rules(str(tmp_path))

    assert caught.value.path == str(tmp_path)
    assert caught.value.problems == [
        f"{tmp_path}/b.yaml: rule 'same' (rules[0]): when.changed[0]: unknown field 'Stat' for "
        "zoho/Appointments__s (did you mean 'Status'?)",
        f"{tmp_path}/c.yaml: line 3, column 6: while parsing a flow node: expected the node content, "
        "but found '<stream end>'",
        f"{tmp_path}/b.yaml: rule 'same' (rules[0]): name: duplicate rule name (first defined at "
        f"{tmp_path}/a.yaml, rules[0])",
    ]


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == [f"{tmp_path}: no rule files (*.yaml, *.yml) in this directory"]


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "rules.yaml"

    with pytest.raises(RuleFileError) as caught:
        load_rules(missing)

    assert caught.value.path == str(missing)
    assert caught.value.problems == [f"{missing}: no such file or directory"]


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    unreadable = tmp_path / "file" / "rules.yaml"  # below a file: the OS refuses to open it

    assert problems_of(unreadable) == [f"{unreadable}: cannot read: Not a directory"]


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    latin1 = tmp_path / "rules.yaml"
    latin1.write_bytes("version: 1\nrules: []\n# Café\n".encode("latin-1"))

    assert problems_of(latin1) == [f"{latin1}: not UTF-8 text (line 3, byte 27)"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "version: 1\nrules: [\n",
            "rules.yaml: line 3, column 1: while parsing a flow node: "
            "expected the node content, but found '<stream end>'",
        ),
        ("version: 1\n  rules: []\n", "rules.yaml: line 2, column 8: mapping values are not allowed here"),
        (
            "version: 1\nrules: []\n---\nversion: 1\n",
            "rules.yaml: line 3, column 1: expected a single document in the stream: but found another document",
        ),
        (
            "version: 1\nrules: [!!python/object:os.system x]\n",
            "rules.yaml: line 2, column 9: could not "
            "determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
        ("version: 1\nrules: []\nx: \x07\n", "rules.yaml: line 3, column 4: character U+0007 is not allowed in YAML"),
    ],
)
def test_yaml_syntax_errors_give_line_and_column(text: str, problem: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, origin="rules.yaml")

    assert caught.value.problems == [problem]


def test_duplicate_keys_are_errors_with_their_line() -> None:
    text = ONE_RULE.format(name="a").replace("    source: zoho\n", "    source: zoho\n    source: zoho\n")

    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, origin="rules/dup.yaml")

    assert caught.value.problems == [
        "rules/dup.yaml: line 5, column 5: duplicate key 'source' (first defined at line 4)"
    ]


def test_duplicate_rule_names_in_one_file_are_errors() -> None:
    text = ONE_RULE.format(name="a") + ONE_RULE.format(name="a").split("rules:\n", 1)[1]

    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, origin="r.yaml")

    assert caught.value.problems == [
        "r.yaml: rule 'a' (rules[1]): name: duplicate rule name (first defined at rules[0])"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "r.yaml: the file is empty (expected 'version: 1' and a 'rules' list)"),
        ("# only a comment\n", "r.yaml: the file is empty (expected 'version: 1' and a 'rules' list)"),
        ("- version: 1\n", "r.yaml: the top level must be a mapping with 'version' and 'rules', not a list"),
        ("just text\n", "r.yaml: the top level must be a mapping with 'version' and 'rules', not 'just text'"),
        ("version: 2\nrules: []\n", "r.yaml: version: unsupported version 2 (supported: 1)"),
        ("version: '1'\nrules: []\n", "r.yaml: version: must be a valid integer, not '1'"),
        ("rules: []\n", "r.yaml: version: is required"),
        ("version: 1\n", "r.yaml: rules: is required"),
        ("version: 1\nrules:\n", "r.yaml: rules: must be a list, not empty (null)"),
        ("version: 1\nrules: []\nrulez: []\n", "r.yaml: unknown key 'rulez' (did you mean 'rules'?)"),
        ("version: 1\nrules: []\nowner: me\n", "r.yaml: unknown key 'owner' (allowed: version, rules)"),
    ],
)
def test_file_level_errors(text: str, problem: str) -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rules(text, origin="r.yaml")

    assert caught.value.problems == [problem]


def test_an_empty_rules_list_is_valid() -> None:
    assert parse_rules("version: 1\nrules: []\n", origin="r.yaml").rules == ()


def test_rule_file_error_str_joins_the_problems_and_survives_pickling() -> None:
    error = RuleFileError("rules", ["rules/a.yaml: one", "rules/b.yaml: two"])

    copy = pickle.loads(pickle.dumps(error))

    assert str(error) == "rules/a.yaml: one\nrules/b.yaml: two"
    assert (copy.path, copy.problems, str(copy)) == (error.path, error.problems, str(error))
