"""Actions: run a rule's planned action against the CRM the record came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workers.actions.reschedule_history import ActionResult, log_zoho_reschedule
from workers.actions.reschedule_note import log_hubspot_reschedule
from workers.checkpoints import NO_CHECKPOINTS, Checkpoints
from workers.diff import Change
from workers.errors import ActionNotApplicableError
from workers.fetch import CrmClients
from workers.ledger import Ledger
from workers.record import Record
from workers.rules.evaluate import PlannedAction
from workers.rules.model import LogRescheduleHistoryParams


@dataclass(frozen=True)
class Actions:
    """The action implementations and the clients and ledger they use."""

    crm: CrmClients
    ledger: Ledger
    checkpoints: Checkpoints = NO_CHECKPOINTS

    async def run(self, planned: PlannedAction, record: Record, change: Change, *, now: datetime) -> ActionResult:
        spec = planned.action
        if spec.type == "log_reschedule_history":
            params = spec.params
            assert isinstance(params, LogRescheduleHistoryParams)
            if record.source == "zoho":
                zoho = self.crm.require_zoho()
                return await log_zoho_reschedule(
                    zoho, self.ledger, record, change, params, now=now, checkpoint=self.checkpoints.reach
                )
            if record.source == "hubspot":
                hubspot = self.crm.require_hubspot()
                return await log_hubspot_reschedule(
                    hubspot, self.ledger, record, change, params, checkpoint=self.checkpoints.reach
                )
        raise ActionNotApplicableError(f"action {spec.type!r} has no implementation for {record.source}")
