"""Actions: run a rule's planned action with the implementation the record's source declares for it.

A run can be traced (ActionTrace): which of the record's fields and histories the action read, and what it
did with the ledger. That is what a dead letter keeps so the action can be run again later on exactly the
inputs it had (workers/replay.py), without keeping the rest of the record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from workers import sources
from workers.actions.base import ActionResult
from workers.checkpoints import NO_CHECKPOINTS, Checkpoints
from workers.diff import Change
from workers.errors import ActionNotApplicableError
from workers.fetch import CrmClients
from workers.ledger import Ledger, Touched
from workers.notify.notifier import Notifier
from workers.record import Record
from workers.rules.context import RuleContext
from workers.rules.evaluate import PlannedAction
from workers.sources.base import ActionRun

V = TypeVar("V")


@dataclass
class Reads:
    """What was read of one mapping: the names looked up (present or not), and whether it was gone through whole."""

    names: set[str] = field(default_factory=set)
    complete: bool = False


@dataclass
class ActionTrace:
    """What one run of an action read and did with the ledger: filled in as it runs, used when it failed."""

    fields: Reads = field(default_factory=Reads)
    history: Reads = field(default_factory=Reads)
    ledger: Touched = field(default_factory=Touched)
    # The values from before the change (RuleContext.known_previous) its templates read.
    previous: Reads = field(default_factory=Reads)


class _Reading(Mapping[str, V]):
    """A read-only view of a mapping that notes in `reads` what is read of it."""

    def __init__(self, inner: Mapping[str, V], reads: Reads) -> None:
        self._inner = inner
        self._reads = reads

    def __getitem__(self, name: str) -> V:
        self._reads.names.add(name)  # a missing name too: what the action did depends on its absence
        return self._inner[name]

    def __iter__(self) -> Iterator[str]:
        self._reads.complete = True
        self._reads.names.update(self._inner)
        return iter(self._inner)

    def __len__(self) -> int:
        self._reads.complete = True  # how many there are depends on every name
        self._reads.names.update(self._inner)
        return len(self._inner)


def traced(record: Record, trace: ActionTrace) -> Record:
    """`record`, with fields and histories that note in `trace` what is read of them."""
    return dataclasses.replace(
        record, fields=_Reading(record.fields, trace.fields), history=_Reading(record.history, trace.history)
    )


def traced_context(context: RuleContext, trace: ActionTrace) -> RuleContext:
    """`context`, with values from before the change that note in `trace` what is read of them (its record's
    fields are the traced record's already: `traced`)."""
    return context.with_previous(_Reading(context.known_previous, trace.previous))


@dataclass(frozen=True)
class Actions:
    """The action implementations and the clients and ledger they use."""

    crm: CrmClients
    ledger: Ledger
    checkpoints: Checkpoints = NO_CHECKPOINTS
    # Notify actions' own client and secrets (workers/notify/notifier.py), apart from the CRM clients.
    notifier: Notifier | None = None

    async def run(
        self,
        planned: PlannedAction,
        record: Record,
        change: Change,
        *,
        now: datetime,
        context: RuleContext,
        trace: ActionTrace | None = None,
    ) -> ActionResult:
        """Run the action; with a `trace`, note what it reads of `record` (its templates' reads too) and what it
        does with the ledger. `context` is the change as the rule saw it."""
        spec = planned.action
        module = sources.module_of(record.source, record.module)
        implementation = module.actions.get(spec.type) if module is not None else None
        if implementation is None:
            raise ActionNotApplicableError(f"action {spec.type!r} has no implementation for {record.source}")
        client = self.crm.require(record.source)
        ledger = self.ledger if trace is None else self.ledger.tracing(trace.ledger)
        seen = record if trace is None else traced(record, trace)
        # Templates read the record as the rule saw it (on a retry of a change crmflow wrote to, the fields it
        # wrote hold their values from before the write: workers/own_writes.py), the action the record as fetched.
        as_seen = record if context.record is record.fields else dataclasses.replace(record, fields=context.record)
        context = context.for_rule(planned.rule).with_record(
            (as_seen if trace is None else traced(as_seen, trace)).fields
        )
        if trace is not None:
            context = traced_context(context, trace)
        run = ActionRun(
            ledger,
            seen,
            change,
            spec.params,
            now,
            self.checkpoints.reach,
            context,
            planned.rule,
            planned.index,
            self.notifier,
        )
        return await implementation(client, run)
