"""Actions: run a rule's planned action with the implementation the record's source declares for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workers import sources
from workers.actions.base import ActionResult
from workers.checkpoints import NO_CHECKPOINTS, Checkpoints
from workers.diff import Change
from workers.errors import ActionNotApplicableError
from workers.fetch import CrmClients
from workers.ledger import Ledger
from workers.record import Record
from workers.rules.evaluate import PlannedAction
from workers.sources.base import ActionRun


@dataclass(frozen=True)
class Actions:
    """The action implementations and the clients and ledger they use."""

    crm: CrmClients
    ledger: Ledger
    checkpoints: Checkpoints = NO_CHECKPOINTS

    async def run(self, planned: PlannedAction, record: Record, change: Change, *, now: datetime) -> ActionResult:
        spec = planned.action
        module = sources.module_of(record.source, record.module)
        implementation = module.actions.get(spec.type) if module is not None else None
        if implementation is None:
            raise ActionNotApplicableError(f"action {spec.type!r} has no implementation for {record.source}")
        client = self.crm.require(record.source)
        run = ActionRun(self.ledger, record, change, spec.params, now, self.checkpoints.reach)
        return await implementation(client, run)
