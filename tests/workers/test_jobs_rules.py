"""process_change and the rule language, on a real worker and real Redis: when.operation (a delete runs the rules
that name it, with the snapshot as `previous`), `previous:` conditions, templates rendered from the rule context,
and each action's effect applied once per change through its change_key.

A made-up CRM ("probe", module "items", registered only here) stands for one whose actions are all implemented:
its `notify` and `add_note` render their templates with `run.context` and apply their effect through the ledger
with `run.change_key()`, as real implementations do. Its API is an httpx.MockTransport.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from tests.workers.harness import enqueue_change, job_result, run_worker
from workers import sources
from workers.actions.base import ActionResult
from workers.deadletters import DeadLetters
from workers.record import Record
from workers.rules.model import AddNoteParams, NotifyParams
from workers.rules.templates import render
from workers.snapshots import load_snapshot
from workers.sources.base import ActionRun, Source, SourceModule

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from workers.config import WorkerConfig

BASE = "http://probe"
T0 = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)


@dataclass
class ProbeCrm:
    """Items (fields and modified time), the notes on them, and the hooks delivered: the probe CRM's state."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[dict[str, Any]] = field(default_factory=list)

    def put(self, item_id: str, modified: datetime, **fields: Any) -> None:
        self.items[item_id] = {"modified": modified.isoformat(), "fields": fields}

    def handle(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if parts == ["hooks"] and request.method == "POST":
            self.hooks.append(orjson.loads(request.content))
            return httpx.Response(200, json={"id": f"hook-{len(self.hooks)}"})
        if len(parts) >= 2 and parts[0] == "items" and parts[1] in self.items:
            if len(parts) == 2 and request.method == "GET":
                return httpx.Response(200, json=self.items[parts[1]])
            if parts[2:] == ["notes"] and request.method == "POST":
                notes = self.notes.setdefault(parts[1], [])
                notes.append(orjson.loads(request.content)["text"])
                return httpx.Response(201, json={"id": f"note-{len(notes)}"})
        return httpx.Response(404, json={"error": "not found"})


class ProbeClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, item_id: str) -> Record:
        response = await self.http.get(f"{BASE}/items/{item_id}", timeout=5)
        if response.status_code == 404:
            from workers.errors import CrmNotFoundError

            raise CrmNotFoundError(item_id)
        body = response.json()
        modified = datetime.fromisoformat(body["modified"])
        return Record(source="probe", module="items", id=item_id, modified_time=modified, fields=body["fields"])

    async def post(self, path: str, body: dict[str, Any]) -> str:
        response = await self.http.post(f"{BASE}{path}", json=body, timeout=5)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["id"])


def connect(config: WorkerConfig, redis: Redis, http: httpx.AsyncClient) -> ProbeClient:
    return ProbeClient(http)


async def fetch(client: ProbeClient, record_id: str, fields: frozenset[str]) -> Record:
    return await client.get(record_id)


async def nothing_there(effect: Any) -> str | None:
    return None


async def notify(client: ProbeClient, run: ActionRun) -> ActionResult:
    assert isinstance(run.params, NotifyParams)
    context = run.context
    body = {"rule": run.rule, "index": run.index, "operation": context.operation, "record": run.record.id}
    if run.params.text is not None:
        body["text"] = render(run.params.text, context.variables())

    async def deliver(effect: Any) -> str:
        return await client.post("/hooks", effect)

    applied = await run.ledger.apply_once(
        run.change_key(), body, find_existing=nothing_there, write=deliver, checkpoint=run.checkpoint
    )
    return ActionResult(applied.outcome, applied.crm_id)


async def add_note(client: ProbeClient, run: ActionRun) -> ActionResult:
    assert isinstance(run.params, AddNoteParams)
    variables = run.context.variables()
    text = f"{render(run.params.title, variables)}: {render(run.params.content, variables)}"

    async def write(effect: Any) -> str:
        return await client.post(f"/items/{run.record.id}/notes", {"text": effect})

    applied = await run.ledger.apply_once(run.change_key(), text, find_existing=nothing_there, write=write)
    return ActionResult(applied.outcome, applied.crm_id)


SOURCE: Source[ProbeClient] = Source(
    name="probe",
    modules=(
        SourceModule(
            name="items",
            catalogue=frozenset({"Name", "Status", "Starts_At", "Owner"}),
            fetch=fetch,
            start_field="Starts_At",
            remembered=frozenset({"Starts_At"}),
            actions={"notify": notify, "add_note": add_note},
        ),
    ),
    connect=connect,
    settings_hint="the probe CRM is not configured",
)

RULES = """\
version: 1
rules:
  - name: tell-deletes
    source: probe
    module: items
    when: {operation: delete}
    actions:
      - type: notify
        with:
          url: https://hooks.example.com/deleted
          text: "{{ previous.Name }} deleted by {{ rule.name }} (was {{ previous.Status }})"
  - name: note-cancels-and-deletes
    source: probe
    module: items
    when: {operation: [update, delete], changed: Status}
    conditions:
      - {previous: Status, equals: open}
    actions:
      - type: add_note
        with: {title: "{{ rule.name }}", content: "{{ previous.Status }} -> {{ record.Status | default('gone') }}"}
      - type: notify
        with: {url: "https://hooks.example.com/status", text: "{{ change.Status.old }} -> {{ change.Status.new }}"}
  - name: late-moves
    source: probe
    module: items
    when: {changed: [Starts_At]}
    conditions:
      - {field: reschedule.notice_hours, less_than: 24}
      - {field: reschedule.new_start, greater_than: "2027-01-12T00:00:00+01:00"}
    actions:
      - type: notify
        with:
          url: https://hooks.example.com/late
          text: >-
            {{ record.Name }}: {{ reschedule.old_start }} -> {{ reschedule.new_start }},
            {{ reschedule.notice_hours | round(1) }} h
  - name: new-items
    source: probe
    module: items
    when: {operation: insert}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/new", text: "new {{ record.Name }}"}
"""


@pytest.fixture
def probe_source() -> Iterator[None]:
    sources.register(SOURCE)
    try:
        yield
    finally:
        sources.unregister(SOURCE.name)


@pytest.fixture
def crm() -> ProbeCrm:
    return ProbeCrm()


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "probe.yaml"
    path.write_text(RULES)
    return path


@dataclass
class World:
    redis: ArqRedis
    redis_url: str
    crm: ProbeCrm
    rules: Path

    async def job(self, item_id: str, operation: str = "update", at: datetime | None = None) -> Any:
        fields: dict[str, Any] = {"operation": operation}
        if at is not None:
            fields["notified_at_ms"] = int(at.timestamp() * 1000)
        event = await enqueue_change(self.redis, "probe", "items", item_id, **fields)
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.crm.handle)) as http:
            await run_worker(self.redis_url, http, RULES_PATH=str(self.rules))
        return await job_result(self.redis, event)


@pytest.fixture
def world(redis: ArqRedis, redis_url: str, crm: ProbeCrm, rules_file: Path, probe_source: None) -> World:
    return World(redis, redis_url, crm, rules_file)


async def test_an_insert_fires_insert_rules_only(world: World) -> None:
    world.crm.put("i1", T0, Name="Boiler", Status="open", Starts_At="2027-01-20T10:00:00+00:00")

    result = await world.job("i1", "insert")

    assert result["status"] == "processed"
    assert [(a["rule"], a["status"]) for a in result["actions"]] == [("new-items", "created")]
    assert world.crm.hooks == [
        {"rule": "new-items", "index": 0, "operation": "insert", "record": "i1", "text": "new Boiler"}
    ]


async def test_a_delete_runs_delete_rules_on_the_snapshot_then_forgets_it(world: World) -> None:
    world.crm.put("i1", T0, Name="Boiler", Status="open", Starts_At="2027-01-20T10:00:00+00:00")
    await world.job("i1", "update")  # first seen: the snapshot now holds what the rules read
    assert await load_snapshot(world.redis, "probe", "items", "i1") is not None
    world.crm.hooks.clear()

    deleted = await world.job("i1", "delete")

    assert deleted == {
        "status": "deleted",
        "actions": [
            {"rule": "tell-deletes", "action": "notify", "status": "created", "detail": "hook-1"},
            # add_note acts on the record, which is gone: skipped; the rule's notify still runs.
            {"rule": "note-cancels-and-deletes", "action": "add_note", "status": "skipped"},
            {"rule": "note-cancels-and-deletes", "action": "notify", "status": "created", "detail": "hook-2"},
        ],
    }
    assert world.crm.hooks == [
        {
            "rule": "tell-deletes",
            "index": 0,
            "operation": "delete",
            "record": "i1",
            "text": "Boiler deleted by tell-deletes (was open)",
        },
        {"rule": "note-cancels-and-deletes", "index": 1, "operation": "delete", "record": "i1", "text": "open -> "},
    ]
    assert world.crm.notes == {}
    assert await load_snapshot(world.redis, "probe", "items", "i1") is None
    assert await DeadLetters(world.redis).all() == []

    # The same delete notified again (another time): no snapshot is left, so nothing is known and nothing runs.
    assert await world.job("i1", "delete") == {"status": "deleted"}
    assert len(world.crm.hooks) == 2


async def test_a_delete_of_a_record_never_seen_runs_no_rules(world: World) -> None:
    assert await world.job("i9", "delete") == {"status": "deleted"}
    assert world.crm.hooks == []
    assert await DeadLetters(world.redis).all() == []


async def test_without_delete_rules_a_delete_only_forgets_the_snapshot(world: World, rules_file: Path) -> None:
    rules_file.write_text(  # noqa: ASYNC240 - a small file of the test's own
        RULES.split("  - name: late-moves")[0]
        .replace("operation: delete", "operation: insert")
        .replace("[update, delete]", "[update]")
    )
    world.crm.put("i1", T0, Name="Boiler", Status="open")
    await world.job("i1")

    assert await world.job("i1", "delete") == {"status": "deleted"}
    assert await load_snapshot(world.redis, "probe", "items", "i1") is None


async def test_previous_conditions_and_templates_see_the_value_before_the_change(world: World) -> None:
    world.crm.put("i1", T0, Name="Boiler", Status="open", Starts_At="2027-01-20T10:00:00+00:00")
    await world.job("i1")
    world.crm.put(
        "i1", T0 + timedelta(minutes=1), Name="Boiler", Status="cancelled", Starts_At="2027-01-20T10:00:00+00:00"
    )

    cancelled = await world.job("i1")
    world.crm.put("i1", T0 + timedelta(minutes=2), Name="Boiler", Status="open", Starts_At="2027-01-20T10:00:00+00:00")
    reopened = await world.job("i1")  # previous Status is cancelled: the condition does not hold

    assert [(a["rule"], a["action"], a["status"]) for a in cancelled["actions"]] == [
        ("note-cancels-and-deletes", "add_note", "created"),
        ("note-cancels-and-deletes", "notify", "created"),
    ]
    assert world.crm.notes == {"i1": ["note-cancels-and-deletes: open -> cancelled"]}
    assert world.crm.hooks[-1]["text"] == "open -> cancelled"
    assert reopened["changed"] == ["Status"]
    assert reopened["actions"] == []


async def test_reschedule_conditions_and_templates(world: World) -> None:
    # Each change is made at its modified time; notice_hours counts from there to the OLD start.
    world.crm.put("i1", T0 - timedelta(hours=1), Name="Boiler", Status="open", Starts_At="2027-01-20T10:00:00+00:00")
    await world.job("i1")
    world.crm.put("i1", T0, Name="Boiler", Status="open", Starts_At="2027-01-12T10:30:00+01:00")
    early = await world.job("i1")  # 193 h before the old start: not late
    world.crm.put("i1", T0 + timedelta(hours=1), Name="Boiler", Status="open", Starts_At="2027-01-13T10:00:00Z")
    late = await world.job("i1")  # at 10:00Z on the 11th, 23.5 h before 10:30+01:00 on the 12th

    assert early["changed"] == ["Starts_At"]
    assert early["actions"] == []
    assert [(a["rule"], a["status"]) for a in late["actions"]] == [("late-moves", "created")]
    assert world.crm.hooks[-1]["text"] == "Boiler: 2027-01-12T10:30:00+01:00 -> 2027-01-13T10:00:00+00:00, 23.5 h"


async def test_a_retry_after_a_crash_before_the_snapshot_does_not_act_twice(world: World) -> None:
    world.crm.put("i1", T0, Name="Boiler", Status="open")
    await world.job("i1")
    world.crm.put("i1", T0 + timedelta(minutes=1), Name="Boiler", Status="cancelled")
    await world.job("i1")
    # As if the worker died after the actions and before saving the snapshot: restore the older one, and let
    # the record change again meanwhile. The change is still the one from the same snapshot.
    from workers.diff import Snapshot
    from workers.snapshots import save_snapshot

    await save_snapshot(
        world.redis, "probe", "items", "i1", Snapshot(T0, {"Status": "open", "Name": "Boiler", "Starts_At": None})
    )
    world.crm.put("i1", T0 + timedelta(minutes=2), Name="Boiler", Status="cancelled", Owner="Ann")

    retried = await world.job("i1")

    assert [a["status"] for a in retried["actions"]] == ["already_logged", "already_logged"]
    assert world.crm.notes == {"i1": ["note-cancels-and-deletes: open -> cancelled"]}
    assert len(world.crm.hooks) == 1


EVERY_UPDATE = """\
version: 1
rules:
  - name: every-update
    source: probe
    module: items
    when: {operation: update}
    actions:
      - type: notify
        with: {url: "https://hooks.example.com/updated", text: "updated"}
"""


async def test_a_repeated_notification_of_an_unchanged_record_fires_no_rule(world: World, rules_file: Path) -> None:
    # A rule on every update fires on a change of any field, watched or not; the same change notified again
    # (another notified time, the record as crmflow last processed it) is no update of its own.
    rules_file.write_text(EVERY_UPDATE)  # noqa: ASYNC240 - a small file of the test's own
    world.crm.put("i1", T0, Name="Boiler", Status="open")
    await world.job("i1", "insert", at=T0)
    world.crm.put("i1", T0 + timedelta(minutes=1), Name="Boiler (renamed)", Status="open")

    first = await world.job("i1", at=T0 + timedelta(minutes=1))
    again = await world.job("i1", at=T0 + timedelta(minutes=2))

    assert [(a["rule"], a["status"]) for a in first["actions"]] == [("every-update", "created")]
    assert again["status"] == "processed" and again["actions"] == []
    assert [hook["text"] for hook in world.crm.hooks] == ["updated"]
