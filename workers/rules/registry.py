"""Action registry: each action type's parameter model and the source/modules it can run on. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel

from workers.rules.model import LogRescheduleHistoryParams


@dataclass(frozen=True)
class ActionType:
    """What the rule loader needs to know about an action type."""

    params: type[BaseModel]
    # (source, module) pairs the action can act on.
    targets: frozenset[tuple[str, str]]


ACTION_TYPES: Mapping[str, ActionType] = MappingProxyType(
    {
        "log_reschedule_history": ActionType(
            params=LogRescheduleHistoryParams,
            targets=frozenset({("zoho", "Appointments__s"), ("hubspot", "appointments")}),
        ),
    }
)
