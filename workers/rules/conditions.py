"""Conditions: a rule's tests on the fetched record (dotted paths, JSON-scalar equality). Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from workers.rules.model import Condition


class _Missing(Enum):
    MISSING = "missing"


MISSING = _Missing.MISSING


def resolve(record: Mapping[str, Any], path: str) -> Any:
    """The value at a field path ('Status', 'Owner.id'); MISSING when a step is absent or not a mapping."""
    value: Any = record
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


def same(value: Any, operand: str | int | float | bool) -> bool:
    """JSON equality: like ==, except that a boolean never equals a number (true is not 1)."""
    if isinstance(value, bool) is not isinstance(operand, bool):
        return False
    return bool(value == operand)


def is_set(value: Any) -> bool:
    """Present, not null and not the empty string."""
    return value is not MISSING and value is not None and value != ""


def holds(condition: Condition, record: Mapping[str, Any]) -> bool:
    """Whether the condition is true of the record. A missing field equals nothing and is in no list."""
    return _OPERATORS[condition.operator](resolve(record, condition.field), condition.operand)


def _any_same(value: Any, operands: Iterable[str | int | float | bool]) -> bool:
    return any(same(value, operand) for operand in operands)


_OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "equals": same,
    "not_equals": lambda value, operand: not same(value, operand),
    "in": _any_same,
    "not_in": lambda value, operands: not _any_same(value, operands),
    "is_set": lambda value, wanted: is_set(value) is wanted,
}
