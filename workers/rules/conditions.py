"""Conditions: a rule's tests on a change (values after or before it, dotted paths, JSON-scalar equality,
numbers and date-times compared). Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from workers.record import parse_datetime
from workers.rules.context import MISSING, RuleContext, resolve
from workers.rules.model import Condition

__all__ = ["MISSING", "compare", "holds", "is_set", "resolve", "same"]

# A number written as text (HubSpot sends every property value as a string).
_NUMBER_TEXT = re.compile(r"-?\d+(\.\d+)?")


def same(value: Any, operand: str | int | float | bool) -> bool:
    """JSON equality: like ==, except that a boolean never equals a number (true is not 1)."""
    if isinstance(value, bool) is not isinstance(operand, bool):
        return False
    return bool(value == operand)


def is_set(value: Any) -> bool:
    """Present, not null and not the empty string."""
    return value is not MISSING and value is not None and value != ""


def compare(value: Any, bound: int | float | datetime) -> int | None:
    """-1, 0 or 1 as `value` is below, at or above `bound`; None when they cannot be compared.

    A number (or a number written as text) compares with a number; a date-time (a datetime, an ISO 8601
    text with an offset, or epoch milliseconds as text) with a date-time, as instants whatever their offsets.
    Anything else (missing, null, a boolean, text that is neither) compares with nothing.
    """
    if isinstance(bound, datetime):
        moment = value if isinstance(value, datetime) else parse_datetime(value)
        if moment is None or moment.tzinfo is None:
            return None
        return (moment > bound) - (moment < bound)
    number = _number(value)
    if number is None:
        return None
    return (number > bound) - (number < bound)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if value == value else None  # NaN is below and above nothing
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        return float(value) if "." in value else int(value)
    return None


def holds(condition: Condition, subject: RuleContext | Mapping[str, Any]) -> bool:
    """Whether the condition is true of the change (a RuleContext), or of a record's fields (a mapping: a
    `previous:` condition then sees nothing). A missing field equals nothing and is in no list."""
    if isinstance(subject, RuleContext):
        value = (
            subject.resolve_previous(condition.path) if condition.tests_previous else subject.resolve(condition.path)
        )
    else:
        value = MISSING if condition.tests_previous else resolve(subject, condition.path)
    return _OPERATORS[condition.operator](value, condition.operand)


def _any_same(value: Any, operands: Iterable[str | int | float | bool]) -> bool:
    return any(same(value, operand) for operand in operands)


def _less(value: Any, bound: int | float | datetime) -> bool:
    return compare(value, bound) == -1


def _greater(value: Any, bound: int | float | datetime) -> bool:
    return compare(value, bound) == 1


_OPERATORS: Mapping[str, Callable[[Any, Any], bool]] = {
    "equals": same,
    "not_equals": lambda value, operand: not same(value, operand),
    "in": _any_same,
    "not_in": lambda value, operands: not _any_same(value, operands),
    "is_set": lambda value, wanted: is_set(value) is wanted,
    "less_than": _less,
    "greater_than": _greater,
}
