"""A `crmflow worker` keeps the Zoho channel alive by itself: creates it when missing, renews it near expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis

from crmflow.embedded_redis import free_port
from tests.processes import answers, sandbox_auth, stack_env, start, stop, wait_for
from workers import keys

CHANNEL = "1000000068001"
TOKEN = "upkeep-notify-token-never-logged"


_auth: dict[str, dict[str, str]] = {}


def channel(sandbox: str) -> dict[str, Any] | None:
    """The channel as the sandbox lists it (token included), or None (one access token per sandbox: the sandbox
    allows ten refreshes in ten minutes, as Zoho does)."""
    with httpx.Client(base_url=sandbox, timeout=5) as client:
        if sandbox not in _auth:
            _auth[sandbox] = sandbox_auth(client)
        response = client.get("/crm/v7/actions/watch", headers=_auth[sandbox])
    entries = [] if response.status_code == 204 else response.json()["watch"]
    found: dict[str, Any] | None = next((entry for entry in entries if entry["channel_id"] == CHANNEL), None)
    return found


def days_left(entry: dict[str, Any] | None) -> float:
    if entry is None:
        return 0.0
    return (datetime.fromisoformat(entry["channel_expiry"]) - datetime.now(UTC)) / timedelta(days=1)


def test_a_worker_creates_the_missing_channel_and_renews_it_near_expiry(redis_url: str, tmp_path: Path) -> None:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    port = free_port()
    sandbox = f"http://127.0.0.1:{port}"
    env = stack_env(
        redis_url,
        sandbox,
        PUBLIC_BASE_URL="https://crmflow.example.com",
        ZOHO_CHANNEL_IDS=CHANNEL,
        ZOHO_NOTIFY_TOKEN=TOKEN,
        ZOHO_CHANNEL_CHECK_S="1",
    )
    # No --notify-url: the sandbox starts with no channel at all.
    processes = [start(["sandbox", "--port", str(port)], env, tmp_path, tmp_path / "sandbox.log")]
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history"), "the sandbox")
        assert channel(sandbox) is None
        processes.append(start(["worker"], env, tmp_path, tmp_path / "worker.log"))

        wait_for(lambda: channel(sandbox) is not None, "the worker to create the channel", timeout_s=20)
        created = channel(sandbox)
        assert created is not None
        assert created["token"] == TOKEN
        assert created["notify_url"] == "https://crmflow.example.com/webhooks/zoho"
        assert created["events"] == ["Appointments__s.create", "Appointments__s.edit", "Appointments__s.delete"]
        assert created["notify_on_related_action"] is False and created["return_affected_field_values"] is True
        assert 6.9 < days_left(created) < 7

        # A day left: the next check renews it (PATCH), keeping events and token.
        with httpx.Client(base_url=sandbox) as client:
            aged = client.post(f"/_sandbox/channels/{CHANNEL}/expire", json={"in_s": 86_400})
        assert aged.status_code == 200
        wait_for(lambda: days_left(channel(sandbox)) > 6.9, "the worker to renew the channel", timeout_s=20)
        renewed = channel(sandbox)
        assert renewed is not None and renewed["token"] == TOKEN and len(renewed["events"]) == 3

        with httpx.Client(base_url=sandbox) as client:
            calls = client.get("/_sandbox/requests").json()["by_endpoint"]
        assert calls["POST /crm/v7/actions/watch"] == 1
        assert calls["PATCH /crm/v7/actions/watch"] == 1
        raw: dict[bytes, bytes] = store.hgetall(keys.duty_state("zoho-channels"))  # type: ignore[assignment]
        state = {k.decode(): v.decode() for k, v in raw.items()}
        assert state["state"] == "ok"
        assert state["summary"].startswith(f"{CHANNEL} ")
        assert store.hgetall(keys.ZOHO_CHANNEL_FAILURES) == {}
    finally:
        for process in processes:
            stop(process)
    log = (tmp_path / "worker.log").read_text()
    assert "duty zoho-channels done in" in log and f"{CHANNEL} renewed (expires in 23h 59m)" in log
    assert TOKEN not in log
