"""Helpers for action tests: the in-process sandbox as both CRMs, and ActionRuns built as dispatch builds them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from arq.connections import ArqRedis
from pydantic import BaseModel, SecretStr

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import sandbox_zoho
from workers import sources
from workers.crm.hubspot import HubSpotClient
from workers.crm.zoho import ZohoClient
from workers.diff import Change
from workers.ledger import Ledger
from workers.record import Record
from workers.rules.context import RuleContext
from workers.sources.base import ActionRun


@dataclass
class Sandbox:
    """The in-process sandbox, its control API through `http`, and a client of each CRM pointed at it."""

    http: httpx.AsyncClient
    zoho: ZohoClient
    hubspot: HubSpotClient

    async def zoho_record(self, record_id: str) -> Record:
        return await self.zoho.get_appointment(record_id)

    async def zoho_notes(self) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = (await self.http.get("/_sandbox/notes")).json()["data"]
        return notes

    async def hubspot_notes(self) -> list[dict[str, Any]]:
        notes: list[dict[str, Any]] = (await self.http.get("/_sandbox/hubspot/notes")).json()["notes"]
        return notes

    async def count(self, endpoint: str) -> int:
        counts: dict[str, int] = (await self.http.get("/_sandbox/requests")).json()["by_endpoint"]
        return counts.get(endpoint, 0)

    async def faults(self, *rules: dict[str, Any]) -> None:
        assert (await self.http.post("/_sandbox/faults", json=list(rules))).status_code == 200


async def open_sandbox(redis: ArqRedis) -> AsyncIterator[Sandbox]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        hubspot = HubSpotClient(http, api_base="http://sandbox", token=SecretStr("sandbox-hubspot-token"))
        yield Sandbox(http, sandbox_zoho(redis, http), hubspot)


async def no_checkpoint(point: str) -> None:
    return None


def action_run(
    ledger: Ledger,
    record: Record,
    change: Change,
    params: BaseModel,
    *,
    rule: str = "stamp",
    index: int = 0,
    previous: dict[str, Any] | None = None,
    now: datetime | None = None,
    checkpoint: Any = no_checkpoint,
) -> ActionRun:
    """The run dispatch would give an action of `rule` for this change (an update)."""
    module = sources.module_of(record.source, record.module)
    assert module is not None
    context = RuleContext.build(
        source=record.source,
        module=record.module,
        operation="update",
        record=record.fields,
        previous=previous if previous is not None else {n: m.old for n, m in change.fields.items()},
        change=change,
        now=record.modified_time,
        start_field=module.start_field,
        rule=rule,
    )
    return ActionRun(ledger, record, change, params, now or record.modified_time, checkpoint, context, rule, index)
