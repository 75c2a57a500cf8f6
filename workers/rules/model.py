"""Rule model: the validated rule set that the evaluator and the actions consume. Pure."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    SerializeAsAny,
    model_validator,
)

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_FIELD_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")

OPERATORS: tuple[str, ...] = ("equals", "not_equals", "in", "not_in", "is_set")


def _rule_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("must start with a lowercase letter or digit and use only a-z, 0-9, '_' and '-'")
    return value


def _field_name(value: str) -> str:
    if not _FIELD_PATH.fullmatch(value) or "." in value:
        raise ValueError(f"{value!r} is not a field API name (no spaces, no '.')")
    return value


def _field_path(value: str) -> str:
    if not _FIELD_PATH.fullmatch(value):
        raise ValueError(f"{value!r} is not a field API name or a dotted path such as 'Owner.id'")
    return value


def _scalar(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float | bool):
        return value
    kind = "null" if value is None else type(value).__name__
    raise ValueError(f"must be a string, number or boolean, not {kind}")


def _one_or_many(value: object) -> object:
    return (value,) if isinstance(value, str) else value


def _none_as_empty(value: object) -> object:
    return () if value is None else value


RuleName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_rule_name)]
# A source, module or action type as written; the catalogues and the action registry judge it later.
Named = Annotated[str, Field(min_length=1)]
FieldName = Annotated[str, AfterValidator(_field_name)]
FieldPath = Annotated[str, AfterValidator(_field_path)]
# A JSON scalar, kept as the YAML gave it (no coercion between strings, numbers and booleans).
Scalar = Annotated[str | int | float | bool, PlainValidator(_scalar)]


class Trigger(BaseModel):
    """When a rule fires: any of these fields changed. A single field name is accepted for a one-item list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    changed: Annotated[tuple[FieldName, ...], Field(min_length=1), BeforeValidator(_one_or_many)]


class Condition(BaseModel):
    """One test on the fetched record, with exactly one operator. `field` may be a dotted path (Owner.id)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    field: FieldPath
    equals: Scalar | None = None
    not_equals: Scalar | None = None
    in_: Annotated[tuple[Scalar, ...], Field(min_length=1)] | None = Field(default=None, alias="in")
    not_in: Annotated[tuple[Scalar, ...], Field(min_length=1)] | None = None
    is_set: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        problem = operator_problem(self._operators())
        if problem is not None:
            raise ValueError(problem)
        return self

    def _operators(self) -> list[str]:
        return [op for op in OPERATORS if getattr(self, _attribute(op)) is not None]

    @property
    def operator(self) -> str:
        """The name of the operator this condition uses, as written in the rule file."""
        return self._operators()[0]

    @property
    def operand(self) -> Scalar | tuple[Scalar, ...] | bool:
        """The operator's value: a scalar, a tuple of scalars (in, not_in) or a boolean (is_set)."""
        value: Scalar | tuple[Scalar, ...] | bool = getattr(self, _attribute(self.operator))
        return value


def operator_problem(given: list[str]) -> str | None:
    """What is wrong with a condition that gives these operators (in OPERATORS order); None for exactly one."""
    if len(given) == 1:
        return None
    found = f" (found {', '.join(given)})" if given else ""
    return f"needs exactly one operator with a value, out of: {', '.join(OPERATORS)}{found}"


def _attribute(operator: str) -> str:
    return "in_" if operator == "in" else operator


class LogRescheduleHistoryParams(BaseModel):
    """`with:` of log_reschedule_history; each unset parameter defaults to the record's own value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Default: the record's Reschedule_Reason.
    reason: Literal["By Customer", "By Team"] | None = None
    # Default: the record's Reschedule_Note.
    note: Annotated[str, Field(min_length=1, max_length=2000)] | None = None


class ActionSpec(BaseModel):
    """One action of a rule: its type name and its validated parameters (the type's params model)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    params: SerializeAsAny[BaseModel]


class RuleBase(BaseModel):
    """The fields a rule has both in the file and once validated; `actions` differ between the two."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    description: str | None = None
    source: Named
    module: Named
    when: Trigger
    conditions: Annotated[tuple[Condition, ...], BeforeValidator(_none_as_empty)] = ()
    enabled: bool = True

    def targets(self, source: str, module: str) -> bool:
        """Whether this rule is about records of `module` in `source`."""
        return self.source == source and self.module == module

    def fields(self) -> frozenset[str]:
        """The top-level fields this rule reads: its trigger fields and its conditions' first path segments."""
        return frozenset(self.when.changed) | {cond.field.split(".", 1)[0] for cond in self.conditions}


class Rule(RuleBase):
    """A validated rule: known source, module and fields; actions with their validated parameters."""

    actions: Annotated[tuple[ActionSpec, ...], Field(min_length=1)]


class RuleSet(BaseModel):
    """All rules in force, in file order (files in name order when loaded from a directory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[Rule, ...] = ()

    def watched_fields(self, source: str, module: str) -> frozenset[str]:
        """Top-level fields that enabled rules for this source/module name in triggers or conditions."""
        watched: frozenset[str] = frozenset()
        for rule in self.rules:
            if rule.enabled and rule.targets(source, module):
                watched |= rule.fields()
        return watched
