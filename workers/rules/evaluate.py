"""Evaluate: which actions a change to a record calls for, in rule order then action order. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from workers.rules.conditions import holds
from workers.rules.model import ActionSpec, Rule, RuleSet


class PlannedAction(BaseModel):
    """One action to run: the rule that asked for it, its position in that rule, and the action itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    index: int
    action: ActionSpec


def fires(rule: Rule, *, source: str, module: str, changed: Collection[str], record: Mapping[str, Any]) -> bool:
    """Enabled, about this source/module, triggered by one of the changed fields, and all conditions hold."""
    return (
        rule.enabled
        and rule.targets(source, module)
        and any(field in changed for field in rule.when.changed)
        and all(holds(condition, record) for condition in rule.conditions)
    )


def evaluate(
    ruleset: RuleSet, *, source: str, module: str, changed: Collection[str], record: Mapping[str, Any]
) -> list[PlannedAction]:
    """The actions of every rule that fires for this change, rules in file order, actions in rule order."""
    return [
        PlannedAction(rule=rule.name, index=index, action=action)
        for rule in ruleset.rules
        if fires(rule, source=source, module=module, changed=changed, record=record)
        for index, action in enumerate(rule.actions)
    ]
