"""Sources: the shape of a CRM's declaration, everything crmflow needs to know that is specific to one CRM.

A `Source` names the CRM, says how to build its client from the worker's settings, and lists its
`SourceModule`s. A module says how one of its records is fetched, which fields every snapshot keeps, how
a first-seen record's previous values are inferred, which fields rules may name (the catalogue), which
actions it implements, how a sweep lists its recently modified records and how the CRM's own list of the
module's fields is read (custom fields included). Everything else (the
receiver's filter, rules checks, fetch, dispatch, sweeps) is derived from these declarations by the
registry in workers/sources/__init__.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

from workers.actions.base import ActionResult, Checkpoint
from workers.diff import Change
from workers.ledger import Ledger, change_key
from workers.record import ModifiedPage, Record
from workers.rules.context import RuleContext

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis

    from workers.config import WorkerConfig
    from workers.notify.notifier import Notifier

Client = TypeVar("Client")


@dataclass(frozen=True)
class ActionRun:
    """One planned action's inputs, as every implementation receives them (besides its CRM's client).

    `context` is what the rule saw (workers/rules/context.py): templates render with
    `render(text, run.context.variables())` (workers/rules/templates.py). `rule` and `index` name the action (its
    rule, its place in the rule's actions) for ledger keys: `run.change_key()`. After a delete `record` has no
    fields and its modified time is when the delete was notified.
    """

    ledger: Ledger
    record: Record
    change: Change
    params: BaseModel
    now: datetime
    checkpoint: Checkpoint
    context: RuleContext
    rule: str
    index: int
    # What notify actions send with (workers/notify/notifier.py); None in a worker built without one.
    notifier: Notifier | None = None

    def change_key(self) -> str:
        """The ledger key of this action's effect for this change of this record (workers/ledger.py change_key)."""
        record = self.record
        return change_key(
            record.source,
            record.module,
            record.id,
            self.rule,
            self.index,
            since=self.change.since,
            operation=self.context.operation,
            modified_time=record.modified_time,
            changed=self.change.fields,
            first_seen=self.change.first_seen,
        )


# An action implementation for one module: (client, run) -> what it did.
ActionImpl = Callable[[Client, ActionRun], Awaitable[ActionResult]]
# A sweep's listing (workers/sweep.py): (client, since, until, page size) -> the module's records modified in
# [since, until] as (id, modified time), page by page. It may also list records modified after `until`.
ListModified = Callable[[Client, datetime, datetime, int], AsyncIterator[ModifiedPage]]


def _nothing_inferred(record: Record, since: datetime | None) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class SourceModule(Generic[Client]):
    """One module (object type) of a CRM that crmflow can fetch and act on."""

    # The module's name as notifications and rules spell it (Zoho's API name, HubSpot's object name).
    name: str
    # Field API names rules may name in triggers and conditions.
    catalogue: frozenset[str]
    # GET one record by id; the second argument is the set of fields the rules read.
    fetch: Callable[[Client, str, frozenset[str]], Awaitable[Record]]
    # The field holding the appointment's start: a change of it is a reschedule (rules' `reschedule.*`).
    start_field: str | None = None
    # Fields every snapshot keeps, whatever the rules watch, because actions reason about their old values.
    remembered: frozenset[str] = frozenset()
    # Fields the CRM itself changes on every write (its modified time, who modified it, ...): once a diff holds a
    # write of crmflow's own, these are dropped with it, so that the write fires no rule (workers/own_writes.py).
    system_fields: frozenset[str] = frozenset()
    # What a record seen for the first time says about its own previous state ({}: nothing). `since`: the
    # record was found by a sweep of a window from then, so only what it says happened at or after `since` is
    # this change, and the previous state is the one current at `since`; None: it was just notified, so its
    # latest change is this one.
    infer_previous: Callable[[Record, datetime | None], Mapping[str, Any]] = _nothing_inferred
    # action type (as rules name it, see workers/rules/registry.py) -> implementation for this module.
    actions: Mapping[str, ActionImpl[Client]] = field(default_factory=dict)
    # Other names the CRM's notifications use for this module (HubSpot: objectTypeId, subscription prefix).
    aliases: frozenset[str] = frozenset()
    # How a reconciliation sweep lists the module's modified records; None: the module is not swept.
    list_modified: ListModified[Client] | None = None
    # Reads the CRM's own list of the module's fields, custom ones included: (client, module name) -> their API
    # names (workers/field_lists.py). None: the CRM has none, and rules may name only the catalogue.
    field_names: Callable[[Client, str], Awaitable[frozenset[str]]] | None = None


@dataclass(frozen=True)
class Source(Generic[Client]):
    """A CRM: its name, its modules, and how a worker builds its client (None: not configured there)."""

    name: str
    modules: tuple[SourceModule[Client], ...]
    connect: Callable[[WorkerConfig, Redis, httpx.AsyncClient], Client | None]
    # Said when a job needs this source in a worker where it is not configured: which settings to set.
    settings_hint: str

    def module(self, name: str) -> SourceModule[Client] | None:
        """The module called `name` (exactly, as rules and jobs name it), if any."""
        return next((m for m in self.modules if m.name == name), None)

    def notified(self, name: str) -> SourceModule[Client] | None:
        """The module a notification calls `name` (the module's name or one of its aliases), if any."""
        return next((m for m in self.modules if name == m.name or name in m.aliases), None)
