"""Actions: run a rule's planned action against the CRM the record came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from workers.actions.reschedule_history import ActionResult, log_zoho_reschedule
from workers.crm.zoho import ZohoClient
from workers.diff import Change
from workers.errors import ActionNotApplicableError
from workers.ledger import Ledger
from workers.record import Record
from workers.rules.evaluate import PlannedAction
from workers.rules.model import LogRescheduleHistoryParams


@dataclass(frozen=True)
class Actions:
    """The action implementations and the clients and ledger they use."""

    zoho: ZohoClient
    ledger: Ledger

    async def run(self, planned: PlannedAction, record: Record, change: Change, *, now: datetime) -> ActionResult:
        spec = planned.action
        if spec.type == "log_reschedule_history" and record.source == "zoho":
            params = spec.params
            assert isinstance(params, LogRescheduleHistoryParams)
            return await log_zoho_reschedule(self.zoho, self.ledger, record, change, params, now=now)
        raise ActionNotApplicableError(f"action {spec.type!r} has no implementation for {record.source}")
