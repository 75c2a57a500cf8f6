"""Action registry: each action type's parameter model, and where it can run (as the sources declare). Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel

from workers import sources
from workers.rules.model import AddNoteParams, LogRescheduleHistoryParams, NotifyParams, UpdateRecordParams


@dataclass(frozen=True)
class ActionType:
    """What the rule loader needs to know about an action type."""

    params: type[BaseModel]
    # (source, module) pairs the action can act on.
    targets: frozenset[tuple[str, str]]


# The `with:` model of each action type rules may name; which sources implement it is theirs to declare.
ACTION_PARAMS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        "log_reschedule_history": LogRescheduleHistoryParams,
        "notify": NotifyParams,
        "update_record": UpdateRecordParams,
        "add_note": AddNoteParams,
    }
)
# Action types every module of every source accepts in rules: the vocabulary is the same on every CRM. A
# worker whose source has no implementation of one yet dead-letters it (ActionNotApplicableError, dispatch).
EVERYWHERE: frozenset[str] = frozenset({"notify", "update_record", "add_note"})
# Action types that act on the record itself, so cannot run once it is deleted: a delete skips them, and
# `crmflow rules check` refuses them in a rule that fires on deletes only.
NEEDS_RECORD: frozenset[str] = frozenset({"log_reschedule_history", "update_record", "add_note"})


class _ActionTypes(Mapping[str, ActionType]):
    """Action types with their targets as the source registry has them now (sources may be added later)."""

    def __getitem__(self, name: str) -> ActionType:
        targets = sources.all_modules() if name in EVERYWHERE else sources.action_targets(name)
        return ActionType(params=ACTION_PARAMS[name], targets=targets)

    def __iter__(self) -> Iterator[str]:
        return iter(ACTION_PARAMS)

    def __len__(self) -> int:
        return len(ACTION_PARAMS)


ACTION_TYPES: Mapping[str, ActionType] = _ActionTypes()
