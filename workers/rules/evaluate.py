"""Evaluate: which actions a change to a record calls for, in rule order then action order. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from workers.diff import Change
from workers.rules.conditions import holds
from workers.rules.context import RuleContext
from workers.rules.model import ActionSpec, Rule, RuleSet

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class PlannedAction(BaseModel):
    """One action to run: the rule that asked for it, its position in that rule, and the action itself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: str
    index: int
    action: ActionSpec


def fires(rule: Rule, *, source: str, module: str, changed: Collection[str], record: Mapping[str, Any]) -> bool:
    """Whether the rule fires for an update of `record` (nothing known of its previous state): see `fires_for`."""
    return fires_for(rule, _update_of(source, module, record), changed)


def fires_for(rule: Rule, context: RuleContext, changed: Collection[str]) -> bool:
    """Enabled, about the context's source/module, triggered (operation and changed fields), all conditions hold."""
    return (
        rule.enabled
        and rule.targets(context.source, context.module)
        and rule.when.matches(context.operation, changed)
        and all(holds(condition, context) for condition in rule.conditions)
    )


def evaluate(
    ruleset: RuleSet, *, source: str, module: str, changed: Collection[str], record: Mapping[str, Any]
) -> list[PlannedAction]:
    """The actions for an update of `record` with nothing known of its previous state: see `plan`."""
    return plan(ruleset, _update_of(source, module, record), changed)


def plan(ruleset: RuleSet, context: RuleContext, changed: Collection[str]) -> list[PlannedAction]:
    """The actions of every rule that fires for this change, rules in file order, actions in rule order.

    `context` (workers/rules/context.py) is the change: its record, operation, previous values and start-time
    change; `changed` the fields that changed (the diff's).
    """
    return [
        PlannedAction(rule=rule.name, index=index, action=action)
        for rule in ruleset.rules
        if fires_for(rule, context, changed)
        for index, action in enumerate(rule.actions)
    ]


def _update_of(source: str, module: str, record: Mapping[str, Any]) -> RuleContext:
    return RuleContext(
        source=source, module=module, operation="update", record=record, known_previous={}, change=Change(), now=_EPOCH
    )
