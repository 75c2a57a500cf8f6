"""Action notify (every module of every source): POST the change as JSON to the rule's URL, signed.

Exactly once in effect, at least once on the wire. The ledger is keyed by the change (run.change_key(): one
change of one record under one rule's action), and its pending entry holds the exact delivery (URL,
webhook-id, body) before the first attempt: a retry, a duplicate job or a replay sends that same delivery
again, under the same webhook-id, until one attempt gets a 2xx; after that the ledger says it is done and
nothing is sent. The endpoint cannot be asked whether an attempt whose answer was lost arrived, so such a
delivery is sent again: receivers dedupe on webhook-id (Standard Webhooks). Each attempt is stamped and signed
when it is made (workers/notify/notifier.py).
"""

from __future__ import annotations

import logging
from typing import Any

from workers.actions.base import ActionResult
from workers.errors import ActionNotApplicableError
from workers.ledger import Applied
from workers.notify.body import encode, notify_body
from workers.notify.notifier import Notifier
from workers.notify.signing import webhook_id
from workers.rules.context import RuleContext
from workers.rules.model import NotifyParams
from workers.rules.templates import render
from workers.sources.base import ActionRun

logger = logging.getLogger("crmflow.actions")

# What a delivery is once the ledger has it: "delivered" the first time, "already_logged" (the ledger's word)
# for a repeat of one already delivered.
STATUSES = {"created": "delivered", "already_logged": "already_logged", "found_in_crm": "delivered"}


def delivery(run: ActionRun, params: NotifyParams) -> dict[str, Any]:
    """What one change's notify sends (the ledger's pending effect): URL, webhook-id and body. Pure."""
    context: RuleContext = run.context
    text = render(params.text, context.variables()) if params.text is not None else None
    reschedule = context.reschedule.as_dict() if context.reschedule is not None else None
    body = notify_body(
        source=run.record.source,
        module=run.record.module,
        record_id=run.record.id,
        operation=context.operation,
        rule=run.rule,
        modified_time=run.record.modified_time,
        changed=run.change.fields,
        reschedule=reschedule,
        text=text,
    )
    return {"url": params.url, "webhook_id": webhook_id(run.change_key()), "body": body}


async def notify(client: object, run: ActionRun) -> ActionResult:
    """The action as every source module registers it: the CRM's client is not used, the run's notifier is."""
    return await deliver_once(run.notifier, run)


async def deliver_once(notifier: Notifier | None, run: ActionRun) -> ActionResult:
    """Deliver the change to the rule's URL unless the ledger says it was delivered already."""
    params = run.params
    if not isinstance(params, NotifyParams):
        raise ActionNotApplicableError(f"notify was given {type(params).__name__}, not its parameters")
    if notifier is None:
        raise ActionNotApplicableError("this worker has no notify client (workers/main.py builds one)")
    notifier.key(params.secret_env)  # a missing or malformed secret: a dead letter before anything is kept or sent

    async def nowhere(effect: Any) -> str | None:
        return None  # an endpoint cannot be asked what it received: a pending delivery is sent again

    async def send(effect: dict[str, Any]) -> str:
        msg_id = str(effect["webhook_id"])
        await notifier.send(str(effect["url"]), encode(effect["body"]), msg_id=msg_id, secret_env=params.secret_env)
        return msg_id

    applied: Applied = await run.ledger.apply_once(
        run.change_key(), delivery(run, params), find_existing=nowhere, write=send, checkpoint=run.checkpoint
    )
    if applied.outcome == "created":
        logger.info("notify: delivered %s (%s %s)", applied.crm_id, run.record.source, run.record.id)
    return ActionResult(STATUSES[applied.outcome], applied.crm_id)
