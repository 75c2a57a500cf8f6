"""A third CRM is one source module plus its client: the dummy source runs through the receiver's checks,
`crmflow rules check` and a real worker's job, with nothing else in crmflow changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from arq.connections import ArqRedis
from click.testing import CliRunner

from crmflow.cli import main
from tests.dummy_crm.client import FakeDummyCrm
from tests.dummy_crm.source import SOURCE
from tests.workers.harness import enqueue_change, job_result, run_worker
from workers import sources
from workers.contract import ChangeEvent
from workers.rules.load import RuleFileError, parse_rules

RULES = """\
version: 1
rules:
  - name: log-widget-moves
    source: dummy
    module: widgets
    when: {changed: [Starts_At]}
    conditions:
      - {field: Status, not_equals: cancelled}
    actions:
      - type: log_reschedule_history
        with: {reason: By Customer}
"""
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def dummy_source() -> Iterator[None]:
    sources.register(SOURCE)
    try:
        yield
    finally:
        sources.unregister(SOURCE.name)


def test_without_its_source_module_crmflow_knows_no_dummy_crm() -> None:
    assert not sources.supported("dummy", "widgets")
    with pytest.raises(RuleFileError, match="unknown source 'dummy'"):
        parse_rules(RULES, origin="dummy.yaml")


@pytest.mark.usefixtures("dummy_source")
def test_the_receiver_side_accepts_its_changes_and_only_for_its_modules() -> None:
    event = ChangeEvent.model_validate(
        {"source": "dummy", "module": "widgets", "record_id": "w1", "operation": "update", "notified_at_ms": 1}
    )
    assert event.job_id() == "dummy:widgets:w1:update:1"
    assert sources.supported("dummy", "widgets")
    assert not sources.supported("dummy", "gadgets")
    assert sources.action_targets("log_reschedule_history") >= {("dummy", "widgets"), ("zoho", "Appointments__s")}


@pytest.mark.usefixtures("dummy_source")
def test_rules_check_accepts_its_rules_and_rejects_typos_in_its_fields(tmp_path: Path) -> None:
    good = tmp_path / "dummy.yaml"
    good.write_text(RULES)
    bad = tmp_path / "typo.yaml"
    bad.write_text(RULES.replace("changed: [Starts_At]", "changed: [Start_At]"))

    ok = CliRunner().invoke(main, ["rules", "check", str(good)])
    typo = CliRunner().invoke(main, ["rules", "check", str(bad)])

    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == f"{good}: ok, 1 rule"
    assert typo.exit_code == 1
    assert "unknown field 'Start_At' for dummy/widgets (did you mean 'Starts_At'?)" in typo.output


@pytest.mark.usefixtures("dummy_source")
async def test_a_worker_logs_a_moved_widget_once(redis: ArqRedis, redis_url: str, tmp_path: Path) -> None:
    rules = tmp_path / "dummy.yaml"
    rules.write_text(RULES)
    crm = FakeDummyCrm()
    crm.put("w1", T0, Name="Boiler check", Starts_At="2026-12-01T10:00:00+00:00", Status="open")
    http = httpx.AsyncClient(transport=httpx.MockTransport(crm.handle))

    async def process(record_id: str = "w1") -> object:
        event = await enqueue_change(redis, "dummy", "widgets", record_id)
        await run_worker(redis_url, http, RULES_PATH=str(rules))
        return await job_result(redis, event)

    first = await process()
    crm.put("w1", T0 + timedelta(minutes=5), Name="Boiler check", Starts_At="2026-12-02T10:00:00+00:00", Status="open")
    moved = await process()
    again = await process()
    gone = await process("w404")

    assert first == {"status": "processed", "first_seen": True, "changed": [], "actions": []}
    assert moved == {
        "status": "processed",
        "first_seen": False,
        "changed": ["Starts_At"],
        "actions": [
            {"rule": "log-widget-moves", "action": "log_reschedule_history", "status": "created", "detail": "note-1"}
        ],
    }
    assert again == {"status": "processed", "first_seen": False, "changed": [], "actions": []}
    assert gone == {"status": "gone"}
    assert crm.notes["w1"] == [
        {"id": "note-1", "text": "moved from 2026-12-01T10:00:00+00:00 to 2026-12-02T10:00:00+00:00 (By Customer)"}
    ]
    await http.aclose()
