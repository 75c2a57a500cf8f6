"""Rule context: what a rule's conditions and templates see of one change (record, previous, reschedule...). Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from workers.diff import Change, moved_times
from workers.rules.model import RESCHEDULE_PREFIX

Operation = Literal["insert", "update", "delete"]


class _Missing:
    """No value at a path (a field absent, a step that is not a mapping)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def resolve(values: Mapping[str, Any], path: str) -> Any:
    """The value at a field path ('Status', 'Owner.id'); MISSING when a step is absent or not a mapping."""
    value: Any = values
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


@dataclass(frozen=True)
class Reschedule:
    """A start-time change: the old and new start, and how many hours before the old start it was made."""

    old_start: datetime
    new_start: datetime
    # Hours from the change to the old start; negative when the appointment had already started.
    notice_hours: float

    def as_dict(self) -> dict[str, Any]:
        return {"old_start": self.old_start, "new_start": self.new_start, "notice_hours": self.notice_hours}


def reschedule_of(change: Change, start_field: str | None, now: datetime) -> Reschedule | None:
    """The start-time change in `change` (`start_field` moved from one time to another), made at `now`."""
    if start_field is None:
        return None
    moved = moved_times(change, start_field)
    if moved is None:
        return None
    old, new = moved
    return Reschedule(old_start=old, new_start=new, notice_hours=(old - now).total_seconds() / 3600)


class _Before(Mapping[str, Any]):
    """The record before the change: the values known from then (`known`), else the record's own value, taken as
    unchanged. Reads go to the mappings as they come, so a traced record notes what was read of it."""

    def __init__(self, known: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        self._known = known
        self._record = record

    def __getitem__(self, name: str) -> Any:
        if name in self._known:
            return self._known[name]
        return self._record[name]

    def __contains__(self, name: object) -> bool:
        return name in self._known or name in self._record

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._known, *self._record]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._known, *self._record]))


@dataclass(frozen=True)
class RuleContext:
    """One change of one record as rules see it.

    `record`: the fields now ({} after a delete). `known_previous`: the values the fields had before the change,
    where known (the last snapshot, or what a first-seen record says of its past); `previous` falls back to the
    record's own value for the others (unchanged as far as crmflow knows). `now`: when the change was made (the
    record's modified time; for a delete, when it was notified), from which `reschedule.notice_hours` counts.
    """

    source: str
    module: str
    operation: Operation
    record: Mapping[str, Any]
    known_previous: Mapping[str, Any]
    change: Change
    now: datetime
    reschedule: Reschedule | None = None
    # The rule whose conditions or action use the context ("" until one does: RuleContext.for_rule).
    rule: str = ""
    previous: Mapping[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "previous", _Before(self.known_previous, self.record))

    @classmethod
    def build(
        cls,
        *,
        source: str,
        module: str,
        operation: Operation,
        record: Mapping[str, Any],
        previous: Mapping[str, Any],
        change: Change,
        now: datetime,
        start_field: str | None,
        rule: str = "",
    ) -> RuleContext:
        """The context of a change; `start_field` is the module's start time (SourceModule.start_field)."""
        return cls(
            source=source,
            module=module,
            operation=operation,
            record=record,
            known_previous=previous,
            change=change,
            now=now,
            reschedule=reschedule_of(change, start_field, now),
            rule=rule,
        )

    def for_rule(self, name: str) -> RuleContext:
        """The same context, for the rule called `name`."""
        return dataclasses.replace(self, rule=name)

    def with_record(self, record: Mapping[str, Any]) -> RuleContext:
        """The same context reading the record's fields from `record` (a traced view of the same fields)."""
        return dataclasses.replace(self, record=record)

    def with_previous(self, known_previous: Mapping[str, Any]) -> RuleContext:
        """The same context reading the known previous values from `known_previous` (a traced view of them)."""
        return dataclasses.replace(self, known_previous=known_previous)

    def variables(self) -> dict[str, Any]:
        """The template variables: record, previous, change ({field: {old, new}}), reschedule (None when the
        start did not change) and rule ({name, source, module})."""
        return {
            "record": self.record,
            "previous": self.previous,
            "change": {name: {"old": moved.old, "new": moved.new} for name, moved in self.change.fields.items()},
            "reschedule": self.reschedule.as_dict() if self.reschedule is not None else None,
            "rule": {"name": self.rule, "source": self.source, "module": self.module},
        }

    def resolve(self, path: str) -> Any:
        """A condition's `field:` value: `reschedule.<key>` (MISSING when the start did not change), else the
        record's value at `path`."""
        if path.startswith(RESCHEDULE_PREFIX):
            if self.reschedule is None:
                return MISSING
            return resolve(self.reschedule.as_dict(), path.removeprefix(RESCHEDULE_PREFIX))
        return resolve(self.record, path)

    def resolve_previous(self, path: str) -> Any:
        """A condition's `previous:` value: the value at `path` before the change."""
        return resolve(self.previous, path)
