"""`crmflow demo` runs the whole flow in-process and shows the notification, the job and the history row.

On a Redis that is already running it removes exactly the keys it created, however it ends.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from crmflow.embedded_redis import EmbeddedRedis, with_database
from sandbox.demo import support
from sandbox.demo.run import DEMO_DATABASE, run_demo
from tests.processes import REPO, crmflow_env, start, wait_for
from workers import keys
from workers.rules.load import RuleFileError

DEFAULT_RULES = REPO / "rules" / "default.yaml"
CALLS_TODAY = keys.crm_calls("zoho", datetime.now(UTC).date().isoformat())


async def test_demo_prints_the_history_row_it_produced(redis_url: str) -> None:
    lines: list[str] = []

    await run_demo(redis_url=redis_url, rules_path=str(REPO / "rules" / "default.yaml"), out=lines.append)

    text = "\n".join(lines)
    # A Redis that is already running is shared with real deployments: the demo keeps to its own database.
    assert lines[0].startswith("Redis") and "/15 (already running; database 15" in lines[0]
    assert "The notification Zoho sent to the receiver:" in text
    assert '"status": "created"' in text
    assert "The history row crmflow wrote (Appointments_Rescheduled_History__s):" in text
    assert '"Reschedule_Reason": "By Customer"' in text
    assert "rows now: 1." in text
    # The demo's notify rule: one delivery, signed and verified by the endpoint, right after the history row.
    assert lines[3].startswith("Webhook   http://127.0.0.1:") and lines[3].endswith(
        "/hooks/reschedules (a notify endpoint checking Standard Webhooks signatures)"
    )
    assert "rules from" in lines[4] and "and the demo's demo-notify-reschedules (notify)" in lines[4]
    row_at = text.index("The history row crmflow wrote")
    delivery_at = text.index("The notify delivery crmflow POSTed to the demo's webhook endpoint")
    assert row_at < delivery_at < text.index("Zoho reschedule to history row:")
    assert "(/hooks/reschedules), signature verified:" in text
    assert '"rule": "demo-notify-reschedules",\n        "action": "notify",\n        "status": "delivered"' in text
    assert '"type": "crmflow.change"' in text and '"webhook-signature": "v1,' in text
    assert '"text": "Demo - Boiler Service moved from ' in text and " h notice)" in text
    assert "rows now: 1. Notify deliveries now: 1." in text
    assert "The signed batch HubSpot sent to the receiver:" in text
    assert '"x-hubspot-signature-v3"' in text.lower()
    assert "was rescheduled from" in text and "Changed by HubSpot user 71230003 (CRM_UI)." in text
    assert "notes now: 1." in text
    assert "Stopped everything the demo started.\n\nWhen crmflow runs for real, look here" in text
    assert "Metrics   GET /metrics on the receiver (during the demo: http://127.0.0.1:" in text
    assert text.endswith("then http://127.0.0.1:8080/ (events, dead\n          letters, health; log in with the token)")


@pytest.mark.slow
async def test_demo_starts_its_own_redis_when_none_answers() -> None:
    lines: list[str] = []

    await run_demo(redis_url="redis://127.0.0.1:1/0", rules_path=str(REPO / "rules" / "default.yaml"), out=lines.append)

    assert "private redis-server: nothing answered at redis://127.0.0.1:1/0" in lines[0]
    assert "rows now: 1." in "\n".join(lines)
    assert "notes now: 1." in "\n".join(lines)


@pytest.fixture
def shared_redis() -> Iterator[str]:
    """A Redis of the test's own, standing for someone's server: keys of others in the demo's database and in 0."""
    with EmbeddedRedis() as server:
        store = redis.Redis.from_url(with_database(server.url, DEMO_DATABASE))
        store.set("someone:else", "keep me")
        store.hset(CALLS_TODAY, "read", "1")  # a crmflow key the demo adds to, there before it
        redis.Redis.from_url(server.url).set("in-database-0", "keep me too")
        yield server.url


def keys_of(url: str, database: int) -> set[bytes]:
    found: Any = redis.Redis.from_url(with_database(url, database)).keys("*")
    return set(found)


KEPT = {b"someone:else", CALLS_TODAY.encode()}


@pytest.mark.slow
async def test_demo_removes_exactly_the_keys_it_created(shared_redis: str) -> None:
    lines: list[str] = []

    await run_demo(redis_url=shared_redis, rules_path=str(DEFAULT_RULES), out=lines.append)

    assert "notes now: 1." in "\n".join(lines)
    (removed,) = [line for line in lines if line.startswith("Removed the ")]
    assert removed.endswith(" keys the demo created in database 15 (and no other).")
    assert keys_of(shared_redis, DEMO_DATABASE) == KEPT
    assert keys_of(shared_redis, 0) == {b"in-database-0"}


@pytest.mark.slow
async def test_demo_removes_its_keys_when_it_fails(
    shared_redis: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The HubSpot rule off: the Zoho half runs (and leaves its state), then the wait for HubSpot's note fails.
    before, after = DEFAULT_RULES.read_text().rsplit("enabled: true", 1)
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"{before}enabled: false{after}")
    monkeypatch.setattr(support, "WAIT_S", 5.0)
    lines: list[str] = []

    with pytest.raises(TimeoutError, match="the note"):
        await run_demo(redis_url=shared_redis, rules_path=str(rules), out=lines.append)

    assert "rows now: 1." in "\n".join(lines)
    assert lines[-1].startswith("Removed the ")
    assert keys_of(shared_redis, DEMO_DATABASE) == KEPT


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "said"), [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "stopped (SIGTERM)")]
)
def test_demo_interrupted_removes_its_keys(
    shared_redis: str, tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    log = tmp_path / "demo.log"
    env = crmflow_env(REDIS_URL=shared_redis, RULES_PATH=str(DEFAULT_RULES), PYTHONUNBUFFERED="1")
    demo = start(["demo"], env, tmp_path, log)
    store = redis.Redis.from_url(with_database(shared_redis, DEMO_DATABASE))
    try:
        # Midway: the first job has run and left the record's snapshot.
        wait_for(lambda: bool(store.keys(keys.snapshot("zoho", "Appointments__s", "*"))), "the demo's first job")
        demo.send_signal(sig)
        assert demo.wait(timeout=30) == code
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    output = log.read_text()
    assert "Removed the " in output and f"crmflow: the demo was {said}" in output
    assert keys_of(shared_redis, DEMO_DATABASE) == KEPT


async def test_demo_with_invalid_rules_starts_nothing(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: [{name: x}]\n")
    lines: list[str] = []

    with pytest.raises(RuleFileError):
        await run_demo(redis_url="redis://127.0.0.1:1/0", rules_path=str(rules), out=lines.append)

    assert lines == []


@pytest.mark.slow
async def test_demo_never_prints_the_redis_password() -> None:
    lines: list[str] = []

    await run_demo(redis_url="redis://:s3cret-pass@127.0.0.1:1/0", rules_path=str(DEFAULT_RULES), out=lines.append)

    assert "nothing answered at redis://:***@127.0.0.1:1/0" in lines[0]
    assert "s3cret-pass" not in "\n".join(lines)


@pytest.mark.slow
def test_crmflow_demo_names_the_problems_of_its_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nrules: [{name: x}]\n")
    log = tmp_path / "demo.log"

    demo = start(["demo"], crmflow_env(REDIS_URL="redis://127.0.0.1:1/0", RULES_PATH=str(rules)), tmp_path, log)

    assert demo.wait(timeout=30) == 2
    assert f"crmflow: invalid rules in {rules}\n  {rules}: rule 'x' (rules[0]): source: is required" in log.read_text()
