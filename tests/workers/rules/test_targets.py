"""Rule targets: the (source, module) pairs named in rule files, read before any check."""

from __future__ import annotations

from pathlib import Path

from workers.rules.load import rule_targets
from workers.rules.targets import targets_in

REPO = Path(__file__).resolve().parents[3]


def test_targets_of_a_rule_file_even_one_with_mistakes() -> None:
    text = """\
version: 1
rules:
  - {name: a, source: zoho, module: Appointments__s}
  - {name: b, source: hubspot, module: appointments, when: 3}
  - {name: c, source: zoho}
  - {name: d, source: 7, module: x}
  - not a rule
"""
    assert targets_in(text) == {("zoho", "Appointments__s"), ("hubspot", "appointments")}


def test_no_targets_in_text_that_is_not_a_rule_file() -> None:
    assert targets_in("{") == frozenset()
    assert targets_in("- a list") == frozenset()
    assert targets_in("rules: 3") == frozenset()


def test_targets_of_the_default_file_and_of_a_directory(tmp_path: Path) -> None:
    assert rule_targets(REPO / "rules" / "default.yaml") == {("zoho", "Appointments__s"), ("hubspot", "appointments")}
    (tmp_path / "a.yaml").write_text("version: 1\nrules:\n  - {source: zoho, module: Appointments__s}\n")
    (tmp_path / "b.yml").write_bytes(b"\xff\xfe")
    assert rule_targets(tmp_path) == {("zoho", "Appointments__s")}
    assert rule_targets(tmp_path / "missing.yaml") == frozenset()
    assert rule_targets(tmp_path / "empty-dir-does-not-exist") == frozenset()
