"""Rule targets: the (source, module) pairs a rule file's rules name, read before the file is checked. Pure.

`crmflow rules check --online` reads the CRMs' field lists for these before it checks the rules, so a rule
that is wrong in some other way still has its fields checked against the CRM's list. Only well-formed names
count; whether they name a known source and module is for the checks (workers/rules/check.py) to say.
"""

from __future__ import annotations

from typing import Any

import yaml

from workers.rules.yamltext import parse_yaml


def targets_in(text: str) -> frozenset[tuple[str, str]]:
    """Every (source, module) a rule of this YAML text names, both as non-empty strings; none when it is not YAML."""
    try:
        data = parse_yaml(text)
    except yaml.YAMLError:
        return frozenset()
    rules = data.get("rules") if isinstance(data, dict) else None
    if not isinstance(rules, list):
        return frozenset()
    return frozenset(target for rule in rules if (target := _target(rule)) is not None)


def _target(rule: Any) -> tuple[str, str] | None:
    if not isinstance(rule, dict):
        return None
    source, module = rule.get("source"), rule.get("module")
    if isinstance(source, str) and isinstance(module, str) and source and module:
        return source, module
    return None
