"""Rule file parsing: YAML text to checked rules, with every problem in the file collected. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from workers.rules.check import NO_EXTRA_FIELDS, ExtraFields, check_rule
from workers.rules.model import Condition, Rule, Trigger
from workers.rules.problems import Loc, Problem, in_document_order, key_order, render, validation_problems
from workers.rules.registry import ACTION_PARAMS
from workers.rules.salvage import salvage_problems
from workers.rules.schema import ActionDoc, FileDoc, RuleDoc
from workers.rules.yamltext import describe_yaml_error, parse_yaml

M = TypeVar("M", bound=BaseModel)

# A rule's problems come in the order of its keys as the format lists them (docs/rules.md).
_KEY_ORDER = key_order(RuleDoc, Trigger, Condition, ActionDoc, *ACTION_PARAMS.values())

# Without a usable version or rules list there is nothing more to check.
_BLOCKING = frozenset({("version",), ("rules",)})


@dataclass(frozen=True)
class ParsedFile:
    """One rule file: its valid rules, every rule's name as written (by position) and its problems."""

    origin: str
    rules: tuple[Rule, ...]
    names: Mapping[int, str]
    problems: tuple[str, ...]


def parse_file(text: str, origin: str, *, extra_fields: ExtraFields = NO_EXTRA_FIELDS) -> ParsedFile:
    """Parse and check one rule file's text; `origin` names it in problems, `extra_fields` adds the CRMs' own
    field lists to the built-in catalogues (workers/rules/check.py)."""
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        return _failed(origin, f"{origin}: {describe_yaml_error(exc, text)}")
    if data is None:
        return _failed(origin, f"{origin}: the file is empty (expected 'version: 1' and a 'rules' list)")
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else repr(data)
        return _failed(origin, f"{origin}: the top level must be a mapping with 'version' and 'rules', not {kind}")
    problems = _validate(FileDoc, data, ())[1]
    if any(problem.loc in _BLOCKING for problem in problems):
        return ParsedFile(origin, (), {}, tuple(render(origin, p, {}) for p in problems))
    raw_rules: list[Any] = data["rules"]
    names = {i: raw["name"] for i, raw in enumerate(raw_rules) if _has_name(raw)}
    rules: list[Rule] = []
    for index, raw in enumerate(raw_rules):
        rule, rule_problems = _rule(raw, ("rules", index), extra_fields)
        problems += rule_problems
        if rule is not None:
            rules.append(rule)
    return ParsedFile(origin, tuple(rules), names, tuple(render(origin, p, names) for p in problems))


def duplicate_names(files: Sequence[ParsedFile]) -> list[str]:
    """A problem for each rule whose name an earlier rule (in this or an earlier file) already has."""
    first: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for parsed in files:
        for index, name in sorted(parsed.names.items()):
            if name not in first:
                first[name] = (parsed.origin, index)
                continue
            origin, first_index = first[name]
            where = f"rules[{first_index}]" if origin == parsed.origin else f"{origin}, rules[{first_index}]"
            problem = Problem(("rules", index, "name"), f"duplicate rule name (first defined at {where})")
            problems.append(render(parsed.origin, problem, parsed.names))
    return problems


def _rule(raw: Any, loc: Loc, extra_fields: ExtraFields) -> tuple[Rule | None, list[Problem]]:
    """The checked rule, or None and every problem it has (of the schema, the catalogues and the actions)."""
    doc, problems = _validate(RuleDoc, raw, loc)
    if doc is not None:
        rule, problems = check_rule(doc, loc, extra_fields=extra_fields)
        if rule is not None:
            return rule, []
    else:
        problems += salvage_problems(raw, loc, extra_fields=extra_fields)
    return None, in_document_order(problems, _KEY_ORDER)


def _validate(model: type[M], data: Any, loc: Loc) -> tuple[M | None, list[Problem]]:
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, validation_problems(exc, model, loc)


def _has_name(raw: Any) -> bool:
    return isinstance(raw, dict) and isinstance(raw.get("name"), str) and bool(raw["name"])


def _failed(origin: str, problem: str) -> ParsedFile:
    return ParsedFile(origin, (), {}, (problem,))
