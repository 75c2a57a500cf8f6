"""Salvage: the well-formed parts of a rule that failed the schema, checked so that no problem hides another. Pure.

The schema (workers/rules/schema.py) stops at a rule's first broken shape: the catalogues and the action
registry never see it, and pydantic skips a condition's operator check once one of its keys is wrong. Here each
part of such a rule is taken on its own, with the same types the schema uses, and what is well formed is checked
as a valid rule's parts are (workers/rules/check.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from workers.rules.check import NO_EXTRA_FIELDS, ActionParts, ExtraFields, RuleParts, check_parts, condition_field
from workers.rules.model import OPERATORS, Condition, FieldName, FieldPath, Named, Trigger, operator_problem
from workers.rules.problems import Loc, Problem

_NAMED: TypeAdapter[str] = TypeAdapter(Named)
_FIELD_NAME: TypeAdapter[str] = TypeAdapter(FieldName)
_FIELD_PATH: TypeAdapter[str] = TypeAdapter(FieldPath)
_CONDITION_KEYS = frozenset(info.alias or name for name, info in Condition.model_fields.items())


def salvage_problems(raw: Any, loc: Loc, *, extra_fields: ExtraFields = NO_EXTRA_FIELDS) -> list[Problem]:
    """The problems of a rule that failed the schema, besides the schema's own (which the caller has)."""
    if not isinstance(raw, Mapping):
        return []
    conditions = _list(raw.get("conditions"))
    operators = [
        problem
        for index, condition in enumerate(conditions)
        if (problem := _operator_problem(condition, (*loc, "conditions", index))) is not None
    ]
    fields = _changed(raw.get("when"), (*loc, "when", "changed"))
    for index, condition in enumerate(conditions):
        if not isinstance(condition, Mapping):
            continue
        for key in ("field", "previous"):
            path = _valid(_FIELD_PATH, condition.get(key))
            if path is not None:
                where = (*loc, "conditions", index)
                fields.append(
                    condition_field(where, path, None) if key == "field" else condition_field(where, None, path)
                )
    actions = tuple(_action(action, (*loc, "actions", i)) for i, action in enumerate(_list(raw.get("actions"))))
    source, module = _valid(_NAMED, raw.get("source")), _valid(_NAMED, raw.get("module"))
    parts = RuleParts(loc, source, module, tuple(fields), actions, _operations(raw.get("when")))
    return operators + check_parts(parts, extra_fields=extra_fields)[1]


def _valid(adapter: TypeAdapter[str], value: Any) -> str | None:
    try:
        return adapter.validate_python(value)
    except ValidationError:
        return None


def _list(value: Any) -> list[Any]:
    """A list as the schema takes it (null is none); anything else is not a list and was reported."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else []


def _changed(when: Any, loc: Loc) -> list[tuple[Loc, str]]:
    """The well-formed trigger fields; a single name stands for a one-item list, as in the schema."""
    if not isinstance(when, Mapping):
        return []
    changed = when.get("changed")
    names = [changed] if isinstance(changed, str) else _list(changed)
    return [((*loc, i), name) for i, name in enumerate(names) if _valid(_FIELD_NAME, name) is not None]


def _operations(when: Any) -> frozenset[str] | None:
    """The operations a rule fires on, when its trigger is well formed; else None."""
    try:
        return Trigger.model_validate(when).operations()
    except ValidationError:
        return None


def _operator_problem(condition: Any, loc: Loc) -> Problem | None:
    """The operator check pydantic skipped because another key of the condition was wrong.

    No operator at all next to an unknown key is taken as a misspelt operator: the unknown key says it already.
    """
    if not isinstance(condition, Mapping):
        return None
    try:
        Condition.model_validate(condition)
    except ValidationError as exc:
        if any(error["loc"] == () for error in exc.errors()):
            return None  # the condition's own check ran: the schema's problems have its verdict
    else:
        return None
    given = [operator for operator in OPERATORS if condition.get(operator) is not None]
    if not given and set(condition) - _CONDITION_KEYS:
        return None
    message = operator_problem(given)
    return Problem(loc, message) if message is not None else None


def _action(action: Any, loc: Loc) -> ActionParts:
    if not isinstance(action, Mapping):
        return ActionParts(loc, None, None)
    with_ = action.get("with")
    params = {} if with_ is None else with_ if isinstance(with_, Mapping) else None
    return ActionParts(loc, _valid(_NAMED, action.get("type")), params)
