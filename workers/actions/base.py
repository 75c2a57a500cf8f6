"""Actions: what every action shares, its result and the checkpoints a test can hold it at. Pure."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

# Called at named points of an action (workers/checkpoints.py), so a test can kill the worker exactly there.
Checkpoint = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ActionResult:
    """What an action did (created, already_logged, found_in_crm, or superseded: a person's newer value left as
    it was), and anything it could not do."""

    status: str
    detail: str = ""
    # A reschedule that happened but cannot be logged faithfully (see actions/zoho_history.py).
    missed: dict[str, Any] = field(default_factory=dict)
