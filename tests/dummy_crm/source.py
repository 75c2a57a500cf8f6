"""Source dummy: widgets, fetched with DummyClient; a moved Starts_At is logged as a note, exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.dummy_crm.client import DummyClient
from workers.actions.base import ActionResult
from workers.diff import moved_times
from workers.errors import ActionNotApplicableError
from workers.ledger import effect_key
from workers.record import Record
from workers.rules.model import LogRescheduleHistoryParams
from workers.sources.base import ActionRun, Source, SourceModule

if TYPE_CHECKING:
    import httpx
    from redis.asyncio import Redis

    from workers.config import WorkerConfig

START = "Starts_At"


def connect(config: WorkerConfig, redis: Redis, http: httpx.AsyncClient) -> DummyClient:
    return DummyClient(http)


async def fetch_widget(client: DummyClient, record_id: str, fields: frozenset[str]) -> Record:
    return await client.get_widget(record_id)


async def log_move(client: DummyClient, run: ActionRun) -> ActionResult:
    assert isinstance(run.params, LogRescheduleHistoryParams)
    moved = moved_times(run.change, START)
    if moved is None:
        raise ActionNotApplicableError(f"{START} did not move")
    old, new = moved
    reason = f" ({run.params.reason})" if run.params.reason else ""
    text = f"moved from {old.isoformat()} to {new.isoformat()}{reason}"
    record_id = run.record.id

    async def find_existing(text: str) -> str | None:
        return next((note["id"] for note in await client.notes_of(record_id) if note["text"] == text), None)

    async def write(text: str) -> str:
        return await client.add_note(record_id, text)

    key = effect_key("dummy", "widgets", record_id, "log_reschedule_history", old.isoformat(), new.isoformat())
    applied = await run.ledger.apply_once(
        key, text, find_existing=find_existing, write=write, look_first=run.change.first_seen, checkpoint=run.checkpoint
    )
    return ActionResult(applied.outcome, applied.crm_id)


SOURCE: Source[DummyClient] = Source(
    name="dummy",
    modules=(
        SourceModule(
            name="widgets",
            catalogue=frozenset({"Name", START, "Status"}),
            fetch=fetch_widget,
            remembered=frozenset({START}),
            actions={"log_reschedule_history": log_move},
        ),
    ),
    connect=connect,
    settings_hint="the dummy CRM is not configured",
)
