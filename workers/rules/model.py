"""Rule model: the validated rule set that the evaluator and the actions consume. Pure."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Annotated, Literal, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

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
from pydantic_core import PydanticCustomError

from workers.rules.templates import template_fields

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_FIELD_PATH = re.compile(r"[^.\s]+(\.[^.\s]+)*")

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATE_TIME_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]")

OPERATORS: tuple[str, ...] = ("equals", "not_equals", "in", "not_in", "is_set", "less_than", "greater_than")
# What a rule's `when.operation` may name (a ChangeEvent's operation).
OPERATION_NAMES: tuple[str, ...] = ("insert", "update", "delete")
# The operations a rule without `when.operation` fires on: as before the key existed, never a delete.
UNNAMED_OPERATIONS: tuple[str, ...] = ("insert", "update")
# A condition's `field:` naming the start-time change rather than a field of the record.
RESCHEDULE_PREFIX = "reschedule."
RESCHEDULE_FIELDS: tuple[str, ...] = ("old_start", "new_start", "notice_hours")


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


def _bound(value: object) -> int | float | datetime:
    """less_than / greater_than's operand: a number, or an ISO 8601 date-time with an offset (kept as a datetime)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | datetime):
        kind = "null" if value is None else type(value).__name__
        raise ValueError(f"must be a number or an ISO 8601 date-time such as '2027-01-12T10:00:00Z', not {kind}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return value
    moment = value if isinstance(value, datetime) else _iso_datetime(value)
    if moment.tzinfo is None:
        raise ValueError(f"{value!s} has no UTC offset: add Z or one such as +01:00")
    return moment


def _iso_datetime(text: str) -> datetime:
    if not _DATE_TIME_START.match(text):
        raise ValueError(f"{text!r} is neither a number nor an ISO 8601 date-time such as '2027-01-12T10:00:00Z'")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time such as '2027-01-12T10:00:00Z'") from None


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an http(s) URL such as 'https://hooks.example.com/...'")
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (letters, digits and '_')")
    return value


def _one_or_many(value: object) -> object:
    return (value,) if isinstance(value, str) else value


# Stands for a trigger's `changed` when neither it nor `operation` is given.
_NEITHER = object()


def _changed_given(value: object) -> object:
    if value is _NEITHER:
        raise PydanticCustomError("missing", "Field required")
    return _one_or_many(value)


def _none_as_empty(value: object) -> object:
    return () if value is None else value


RuleName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_rule_name)]
# A source, module or action type as written; the catalogues and the action registry judge it later.
Named = Annotated[str, Field(min_length=1)]
FieldName = Annotated[str, AfterValidator(_field_name)]
FieldPath = Annotated[str, AfterValidator(_field_path)]
# A JSON scalar, kept as the YAML gave it (no coercion between strings, numbers and booleans).
Scalar = Annotated[str | int | float | bool, PlainValidator(_scalar)]
# less_than / greater_than's operand: a number, or an ISO 8601 date-time with an offset (a string in the file).
Bound = Annotated[int | float | datetime, PlainValidator(_bound)]
OperationName = Literal["insert", "update", "delete"]
# A Jinja2 template (workers/rules/templates.py); `crmflow rules check` compiles it and checks its names.
Template = Annotated[str, Field(min_length=1, max_length=10_000)]


class Trigger(BaseModel):
    """When a rule fires: on one of `operation` (if given) and when any of `changed` changed (if given).

    A single name is accepted for a one-item list. At least one of the two must be given: without either,
    `changed` is reported missing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    changed: Annotated[tuple[FieldName, ...], Field(min_length=1), BeforeValidator(_changed_given)] = ()
    operation: Annotated[tuple[OperationName, ...], Field(min_length=1), BeforeValidator(_one_or_many)] = ()

    @model_validator(mode="before")
    @classmethod
    def _changed_or_operation(cls, data: object) -> object:
        # Marked rather than raised here, so that the trigger's other problems (an unknown key) are reported too.
        if isinstance(data, dict) and "changed" not in data and "operation" not in data:
            return {**data, "changed": _NEITHER}
        return data

    def matches(self, operation: str, changed: Collection[str]) -> bool:
        """Whether a change by `operation` of the `changed` fields triggers the rule."""
        if operation not in self.operations():
            return False
        return not self.changed or any(name in changed for name in self.changed)

    def operations(self) -> frozenset[str]:
        """The operations on which the rule can fire: those named; without `operation`, inserts and updates (a
        rule fires on a delete only if it names it)."""
        return frozenset(self.operation or UNNAMED_OPERATIONS)


class Condition(BaseModel):
    """One test, with exactly one operator, of the record's value after the change (`field`) or before it
    (`previous`); exactly one of the two. Either may be a dotted path (Owner.id); `field` may also name the
    start-time change (reschedule.old_start, reschedule.new_start, reschedule.notice_hours)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    field: FieldPath | None = None
    previous: FieldPath | None = None
    equals: Scalar | None = None
    not_equals: Scalar | None = None
    in_: Annotated[tuple[Scalar, ...], Field(min_length=1)] | None = Field(default=None, alias="in")
    not_in: Annotated[tuple[Scalar, ...], Field(min_length=1)] | None = None
    is_set: bool | None = None
    less_than: Bound | None = None
    greater_than: Bound | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        problem = subject_problem(self.field, self.previous) or operator_problem(self._operators())
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
    def operand(self) -> Scalar | tuple[Scalar, ...] | bool | datetime:
        """The operator's value: a scalar, a tuple of scalars (in, not_in), a boolean (is_set), or a number or
        datetime (less_than, greater_than)."""
        value: Scalar | tuple[Scalar, ...] | bool | datetime = getattr(self, _attribute(self.operator))
        return value

    @property
    def path(self) -> str:
        """The field path it tests, before or after the change."""
        path = self.field if self.field is not None else self.previous
        assert path is not None  # _one_operator
        return path

    @property
    def tests_previous(self) -> bool:
        """Whether it tests the value before the change (`previous:`)."""
        return self.previous is not None


def subject_problem(field: str | None, previous: str | None) -> str | None:
    """What is wrong with what a condition tests; None for exactly one of `field` and `previous`."""
    if field is None and previous is None:
        return "needs 'field' (the value after the change) or 'previous' (the value before it)"
    if field is not None and previous is not None:
        return "needs exactly one of 'field' (the value after the change) and 'previous' (the value before it)"
    return None


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


@runtime_checkable
class Templated(Protocol):
    """Parameters holding templates: each with its place under `with:` (for problems) and its text."""

    def templates(self) -> Iterator[tuple[tuple[str, ...], str]]: ...


class NotifyParams(BaseModel):
    """`with:` of notify: POST the change as JSON to `url`; `text` adds a rendered `text` field (Slack)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_http_url)]
    # The environment variable holding a Standard Webhooks secret (whsec_...): the deliveries are signed.
    secret_env: Annotated[str, Field(max_length=200), AfterValidator(_env_name)] | None = None
    text: Template | None = None

    def templates(self) -> Iterator[tuple[tuple[str, ...], str]]:
        if self.text is not None:
            yield ("text",), self.text


class UpdateRecordParams(BaseModel):
    """`with:` of update_record: the record's fields to set, each field API name with a template of its value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: Annotated[dict[FieldName, Template], Field(min_length=1)]

    def templates(self) -> Iterator[tuple[tuple[str, ...], str]]:
        for name, template in self.fields.items():
            yield ("fields", name), template


class AddNoteParams(BaseModel):
    """`with:` of add_note: a note on the record, its title and content templates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: Template
    content: Template

    def templates(self) -> Iterator[tuple[tuple[str, ...], str]]:
        yield ("title",), self.title
        yield ("content",), self.content


def templates_of(params: BaseModel) -> list[tuple[tuple[str, ...], str]]:
    """The templates of an action's parameters with their places under `with:` (none for most types)."""
    return list(params.templates()) if isinstance(params, Templated) else []


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
        """The top-level fields this rule's trigger and conditions read (reschedule.* is not a field)."""
        return frozenset(self.when.changed) | {
            cond.path.split(".", 1)[0] for cond in self.conditions if not is_reschedule_path(cond.path)
        }


class Rule(RuleBase):
    """A validated rule: known source, module and fields; actions with their validated parameters."""

    actions: Annotated[tuple[ActionSpec, ...], Field(min_length=1)]

    def fields(self) -> frozenset[str]:
        """The top-level fields this rule reads: its trigger's and conditions', those its templates name, and those
        its update_record actions write (watched, so that the CRM's notice of crmflow's own write is recognised
        as such and fires no rule: workers/own_writes.py)."""
        named = {
            name for spec in self.actions for _, text in templates_of(spec.params) for name in template_fields(text)
        }
        written = {
            name for spec in self.actions if isinstance(spec.params, UpdateRecordParams) for name in spec.params.fields
        }
        return super().fields() | named | written


def is_reschedule_path(path: str) -> bool:
    """Whether a condition's path names the start-time change (reschedule.*) rather than a field."""
    return path == "reschedule" or path.startswith(RESCHEDULE_PREFIX)


class RuleSet(BaseModel):
    """All rules in force, in file order (files in name order when loaded from a directory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[Rule, ...] = ()

    def fires_on(self, source: str, module: str, operation: str) -> bool:
        """Whether an enabled rule for this source/module can fire on `operation` (a delete, say)."""
        return any(
            rule.enabled and rule.targets(source, module) and operation in rule.when.operations() for rule in self.rules
        )

    def watched_fields(self, source: str, module: str) -> frozenset[str]:
        """Top-level fields that enabled rules for this source/module read: in triggers, conditions (field: and
        previous:) and templates (record.X, previous.X, change.X)."""
        watched: frozenset[str] = frozenset()
        for rule in self.rules:
            if rule.enabled and rule.targets(source, module):
                watched |= rule.fields()
        return watched
