"""`crmflow zoho ...` as a user runs it, against a `crmflow sandbox` process and real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from crmflow.embedded_redis import free_port
from tests.processes import answers, crmflow_env, sandbox_auth, stack_env, start, stop, wait_for

pytestmark = pytest.mark.slow

TOKEN = "cli-notify-token-never-printed"
FIRST, SECOND = "1000000068001", "1000000068002"


@pytest.fixture
def sandbox(tmp_path: Path, redis_url: str) -> Iterator[str]:
    """A `crmflow sandbox` process with no channel, and an empty Redis."""
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(["sandbox", "--port", str(port)], stack_env("redis://unused", url), tmp_path, tmp_path / "sb.log")
    try:
        wait_for(lambda: answers(f"{url}/_sandbox/history"), "the sandbox")
        yield url
    finally:
        stop(process)


def zoho(cwd: Path, redis_url: str, sandbox: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = stack_env(
        redis_url,
        sandbox,
        PUBLIC_BASE_URL="https://crmflow.example.com",
        ZOHO_CHANNEL_IDS=f"{FIRST},{SECOND}",
        ZOHO_NOTIFY_TOKEN=TOKEN,
    )
    env.update(settings)
    command = [sys.executable, "-m", "crmflow", "zoho", *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert TOKEN not in done.stdout + done.stderr
    return done


def listed(sandbox: str) -> dict[str, dict[str, Any]]:
    """GET /actions/watch from the sandbox, which shows each channel's token."""
    with httpx.Client(base_url=sandbox, timeout=5) as client:
        response = client.get("/crm/v7/actions/watch", headers=sandbox_auth(client))
    return {} if response.status_code == 204 else {c["channel_id"]: c for c in response.json()["watch"]}


def test_subscribe_list_renew_and_unsubscribe(tmp_path: Path, redis_url: str, sandbox: str) -> None:
    subscribed = zoho(tmp_path, redis_url, sandbox, "subscribe")

    assert subscribed.returncode == 0, subscribed.stderr
    lines = subscribed.stdout.splitlines()
    assert [line.split(";")[0] for line in lines] == [f"{FIRST}: enabled", f"{SECOND}: enabled"]
    assert "Zoho granted an expiry of 20" in lines[0] and "(6d 22h left)" in lines[0]
    channels = listed(sandbox)
    assert {c["token"] for c in channels.values()} == {TOKEN}
    assert channels[FIRST]["notify_url"] == "https://crmflow.example.com/webhooks/zoho"
    assert channels[FIRST]["channel_expiry"].endswith("+00:00") and "." not in channels[FIRST]["channel_expiry"]

    shown = zoho(tmp_path, redis_url, sandbox, "channels", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["channels"]
    assert [(r["channel_id"], r["status"], r["time_left"], r["has_token"]) for r in rows] == [
        (FIRST, "active", "6d 22h", True),
        (SECOND, "active", "6d 22h", True),
    ]
    assert rows[0]["events"] == ["Appointments__s.create", "Appointments__s.edit", "Appointments__s.delete"]

    # The first channel expires and Zoho deletes it; renew enables it again and renews the other (PATCH).
    with httpx.Client(base_url=sandbox) as client:
        assert client.post(f"/_sandbox/channels/{FIRST}/expire").status_code == 200
        client.delete("/_sandbox/requests")
    missing = zoho(tmp_path, redis_url, sandbox, "channels")
    assert missing.stdout.splitlines()[0].startswith(f"{SECOND}: active, 6d 22h left (until ")
    assert f"{FIRST}: missing (in ZOHO_CHANNEL_IDS, but Zoho does not have it)" in missing.stdout

    renewed = zoho(tmp_path, redis_url, sandbox, "renew")

    assert renewed.returncode == 0, renewed.stderr
    assert [line.split(";")[0] for line in renewed.stdout.splitlines()] == [f"{FIRST}: enabled", f"{SECOND}: renewed"]
    with httpx.Client(base_url=sandbox) as client:
        calls = client.get("/_sandbox/requests").json()["by_endpoint"]
    assert {k: v for k, v in calls.items() if "watch" in k} == {
        "GET /crm/v7/actions/watch": 2,
        "POST /crm/v7/actions/watch": 1,
        "PATCH /crm/v7/actions/watch": 1,
    }
    channels = listed(sandbox)
    assert {(c["token"], len(c["events"])) for c in channels.values()} == {(TOKEN, 3)}

    gone = zoho(tmp_path, redis_url, sandbox, "unsubscribe")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.splitlines() == [
        f"{FIRST}: unsubscribed",
        f"{SECOND}: unsubscribed",
        f"note: {FIRST}, {SECOND} still in ZOHO_CHANNEL_IDS: workers keeping channels enable them again at their "
        "next check unless removed from it",
    ]
    assert listed(sandbox) == {}
    again = zoho(tmp_path, redis_url, sandbox, "unsubscribe", FIRST)
    assert again.returncode == 1
    assert f"{FIRST}: not unsubscribed: INVALID_DATA" in again.stderr


def fault(sandbox: str, status: int, *entries: dict[str, Any]) -> None:
    """Zoho's next answer to POST /actions/watch (the request is not carried out)."""
    rule = {"method": "POST", "path_prefix": "/crm/v7/actions/watch", "status": status, "times": 1}
    with httpx.Client(base_url=sandbox) as client:
        assert client.post("/_sandbox/faults", json=rule | {"body": {"watch": list(entries)}}).status_code == 200


def test_a_refusal_or_a_shortened_expiry_fails_with_its_reason(tmp_path: Path, redis_url: str, sandbox: str) -> None:
    refusal = {
        "code": "INVALID_DATA",
        "details": {"api_name": "notify_url", "json_path": "$.watch[0].notify_url"},
        "message": "invalid data",
        "status": "error",
    }
    fault(sandbox, 400, refusal)

    refused = zoho(tmp_path, redis_url, sandbox, "subscribe", ZOHO_CHANNEL_IDS=FIRST)

    assert refused.returncode == 1
    assert f"{FIRST}: not enabled (subscribe): INVALID_DATA: invalid data (notify_url)" in refused.stderr
    shown = zoho(tmp_path, redis_url, sandbox, "channels", ZOHO_CHANNEL_IDS=FIRST)
    assert shown.stdout.splitlines()[-2:] == [
        f"{FIRST}: missing (in ZOHO_CHANNEL_IDS, but Zoho does not have it)",
        shown.stdout.splitlines()[-1],
    ]
    assert shown.stdout.splitlines()[-1].endswith(
        "crmflow zoho subscribe): not enabled: INVALID_DATA: invalid data (notify_url)"
    )

    one_hour = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()
    granted = {"events": [{"channel_expiry": one_hour, "channel_id": FIRST, "resource_name": "Appointments__s"}]}
    fault(sandbox, 201, {"code": "SUCCESS", "details": granted, "message": "subscribed", "status": "success"})

    shortened = zoho(tmp_path, redis_url, sandbox, "subscribe", ZOHO_CHANNEL_IDS=FIRST)

    assert shortened.returncode == 1
    assert f"{FIRST}: enabled (subscribe): Zoho granted an expiry of {one_hour} instead of the" in shortened.stderr
    assert "silent one-hour fallback" in shortened.stderr
    as_json = json.loads(zoho(tmp_path, redis_url, sandbox, "channels", "--json", ZOHO_CHANNEL_IDS=FIRST).stdout)
    assert "silent one-hour fallback" in as_json["channels"][0]["last_failure"]["reason"]


def test_missing_settings_are_named_one_per_line(tmp_path: Path) -> None:
    env = crmflow_env(ZOHO_CLIENT_SECRET="very-secret-value")
    command = [sys.executable, "-m", "crmflow", "zoho", "renew"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "crmflow: invalid configuration",
        "  ZOHO_CLIENT_ID: is not set; the zoho commands call Zoho",
        "  ZOHO_REFRESH_TOKEN: is not set; the zoho commands call Zoho",
        "  PUBLIC_BASE_URL: is not set; Zoho calls PUBLIC_BASE_URL/webhooks/zoho",
        "  ZOHO_CHANNEL_IDS: is not set; name the channel ids to keep (comma-separated numbers)",
        "  ZOHO_NOTIFY_TOKEN: is not set; each channel carries the token the receiver checks",
    ]
