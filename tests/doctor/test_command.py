"""`crmflow doctor` as a real process against a real `crmflow sandbox` process; receiver and worker start-up checks."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from crmflow.embedded_redis import free_port
from receiver.verify import hubspot_v3_signature
from tests.conftest import sample
from tests.processes import answers, crmflow_env, stack_env, start, stop, wait_for
from workers import keys

pytestmark = pytest.mark.slow

Sandbox = Callable[..., str]
SECRET = "a-wrong-secret-value"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """Start `crmflow sandbox ARGS` on a free port; its URL. Stopped after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / f"sandbox-{port}.log"
        processes.append(start(["sandbox", "--port", str(port), *args], crmflow_env(), tmp_path, log))
        wait_for(lambda: answers(f"{url}/_sandbox/history"), "the sandbox")
        return url

    yield run
    for process in processes:
        stop(process)


def doctor(
    tmp_path: Path, redis_url: str, sandbox_url: str, *args: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    receiver = {
        "ZOHO_NOTIFY_TOKEN": "sandbox-notify-token",
        "HUBSPOT_CLIENT_SECRET": "sandbox-hubspot-client-secret",
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "ZOHO_CHANNEL_IDS": "1000000068001",
    }
    env = stack_env(redis_url, sandbox_url, **(receiver | settings))
    return subprocess.run(
        [sys.executable, "-m", "crmflow", "doctor", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_matching_settings_pass(tmp_path: Path, redis_url: str, sandbox: Sandbox) -> None:
    url = sandbox("--notify-url", "http://127.0.0.1:8000/webhooks/zoho")

    done = doctor(tmp_path, redis_url, url, "--online")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "doctor: 0 failed" in done.stdout
    assert "ok    redis: REDIS_URL: Redis at" in done.stdout
    assert "ok    zoho scope ZohoCRM.notifications.UPDATE" in done.stdout
    assert "ok    hubspot write notes" in done.stdout


@pytest.mark.parametrize("side", ["crmflow", "sandbox"])
def test_a_wrong_zoho_secret_is_named_never_shown(tmp_path: Path, redis_url: str, sandbox: Sandbox, side: str) -> None:
    """crmflow's ZOHO_CLIENT_SECRET is wrong, or the sandbox was started with another client secret."""
    url = sandbox("--zoho-client-secret", SECRET) if side == "sandbox" else sandbox()
    wrong = {"ZOHO_CLIENT_SECRET": SECRET} if side == "crmflow" else {}

    done = doctor(tmp_path, redis_url, url, "--online", **wrong)

    assert done.returncode == 1
    assert "FAIL  zoho refresh token: ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET: Zoho refused the client" in done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert "sandbox-client-secret" not in done.stdout + done.stderr


def test_runs_share_the_workers_token_and_a_wrong_secret_is_still_named(
    tmp_path: Path, redis_url: str, sandbox: Sandbox
) -> None:
    """Two runs make one refresh grant (spent from the workers' budget); with that token cached, a wrong
    ZOHO_CLIENT_SECRET still fails."""
    url = sandbox("--notify-url", "http://127.0.0.1:8000/webhooks/zoho")
    store = redis.Redis.from_url(redis_url)
    store.flushdb()  # the test database; earlier tests of this module leave their sandboxes' tokens

    runs = [doctor(tmp_path, redis_url, url, "--online") for _ in range(2)]
    wrong = doctor(tmp_path, redis_url, url, "--online", ZOHO_CLIENT_SECRET=SECRET)

    assert [run.returncode for run in runs] == [0, 0], runs[1].stdout
    assert "ZOHO_REFRESH_TOKEN: Zoho issued an access token" in runs[0].stdout
    assert "the workers' access token for these credentials is cached" in runs[1].stdout
    budgets: list[bytes] = store.keys("crmflow:zoho:token:*:refreshes")  # type: ignore[assignment]
    (budget,) = budgets
    assert store.get(budget) == b"2"  # the first run's grant and the wrong secret's refused one
    assert wrong.returncode == 1
    assert "FAIL  zoho refresh token: ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET: Zoho refused the client" in wrong.stdout
    assert SECRET not in wrong.stdout + wrong.stderr
    store.close()


def test_a_sandbox_granting_fewer_scopes_names_them(tmp_path: Path, redis_url: str, sandbox: Sandbox) -> None:
    url = sandbox(
        "--zoho-scopes",
        "ZohoCRM.modules.appointments.READ,ZohoCRM.modules.appointments_rescheduled_history.READ,"
        "ZohoCRM.notifications.ALL",
        "--hubspot-scopes",
        "crm.objects.appointments.read crm.objects.contacts.read",
    )

    done = doctor(tmp_path, redis_url, url, "--online", "--json")

    assert done.returncode == 1
    report = orjson.loads(done.stdout)
    failing = {(f["check"], f["setting"]) for f in report["findings"] if f["status"] == "fail"}
    assert failing == {
        ("zoho scope ZohoCRM.modules.appointments_rescheduled_history.CREATE", "ZOHO_REFRESH_TOKEN"),
        ("hubspot write notes", "HUBSPOT_ACCESS_TOKEN"),
    }
    notes = next(f for f in report["findings"] if f["check"] == "hubspot write notes")
    assert "crm.objects.contacts.write" in notes["message"]


def test_a_sandbox_with_other_credentials_names_them(tmp_path: Path, redis_url: str, sandbox: Sandbox) -> None:
    url = sandbox("--zoho-refresh-token", "another-refresh-token", "--hubspot-access-token", "pat-na1-another")

    done = doctor(tmp_path, redis_url, url, "--online")

    assert done.returncode == 1
    assert "FAIL  zoho refresh token: ZOHO_REFRESH_TOKEN: Zoho refused the refresh token (invalid_code)" in done.stdout
    assert "FAIL  hubspot read appointments: HUBSPOT_ACCESS_TOKEN: HubSpot refused the token" in done.stdout
    assert "sandbox-refresh-token" not in done.stdout and "sandbox-hubspot-token" not in done.stdout


def test_offline_it_names_each_bad_setting_and_needs_no_network(tmp_path: Path, redis_url: str) -> None:
    done = doctor(tmp_path, redis_url, "http://127.0.0.1:9", ZOHO_NOTIFY_TOKEN="x" * 51, ZOHO_CLIENT_ID="")

    assert done.returncode == 1
    assert "FAIL  receiver settings: ZOHO_NOTIFY_TOKEN: must be 1 to 50 characters" in done.stdout
    assert "FAIL  sources: ZOHO_CLIENT_ID: Zoho is on in the receiver" not in done.stdout
    assert "x" * 51 not in done.stdout
    assert "redis" not in done.stdout


def test_malformed_urls_are_named_without_a_traceback(tmp_path: Path) -> None:
    done = doctor(tmp_path, "redis://[bad", "http://127.0.0.1:9", "--online", PUBLIC_BASE_URL="http://[bad")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    assert "FAIL  urls: REDIS_URL: is not a valid Redis URL" in done.stdout
    assert "FAIL  receiver settings: PUBLIC_BASE_URL: Input should be a valid URL" in done.stdout
    assert "skip  redis: REDIS_URL: not checked: REDIS_URL is invalid" in done.stdout


def test_webhooks_refused_for_a_wrong_hubspot_secret_are_named(tmp_path: Path, redis_url: str) -> None:
    """A real receiver whose HUBSPOT_CLIENT_SECRET is not the app's refuses HubSpot's batch; the doctor reads
    the refusal: a warning while no acceptance is known, a failure once the last acceptance is older."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    wrong = {"HUBSPOT_CLIENT_SECRET": SECRET, "PUBLIC_BASE_URL": public}
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    env = stack_env(redis_url, "http://127.0.0.1:9", **wrong)
    receiver = start(["receiver", "--port", str(port)], env, tmp_path, tmp_path / "receiver.log")
    try:
        wait_for(lambda: answers(f"{public}/healthz"), "the receiver")
        body = orjson.dumps(sample("hubspot/appointment_reschedule"))
        timestamp = str(int(time.time() * 1000))
        url = f"{public}/webhooks/hubspot"
        signature = hubspot_v3_signature("sandbox-hubspot-client-secret", "POST", url, body, timestamp)
        headers = {
            "content-type": "application/json",
            "x-hubspot-signature-v3": signature,
            "x-hubspot-request-timestamp": timestamp,
        }
        refused = httpx.post(url, content=body, headers=headers, timeout=10)
    finally:
        stop(receiver)

    unknown = doctor(tmp_path, redis_url, "http://127.0.0.1:9", "--online", **wrong)
    store.set(keys.last_notification("hubspot"), int(time.time() * 1000) - 3_600_000)
    none_since = doctor(tmp_path, redis_url, "http://127.0.0.1:9", "--online", **wrong)
    store.close()

    assert refused.status_code == 401
    assert "WARN  hubspot webhooks: HUBSPOT_CLIENT_SECRET: the receiver refused 1 HubSpot webhook(s)" in unknown.stdout
    line = "FAIL  hubspot webhooks: HUBSPOT_CLIENT_SECRET: the receiver refused 1 HubSpot webhook(s) with a signature"
    assert line in none_since.stdout and "none accepted since" in none_since.stdout
    assert SECRET not in unknown.stdout + none_since.stdout


@pytest.mark.parametrize("role", ["receiver", "worker"])
def test_receiver_and_worker_refuse_to_start_on_a_failing_offline_check(tmp_path: Path, role: str) -> None:
    env = stack_env(
        "redis://127.0.0.1:9/0",
        "http://127.0.0.1:9",
        ZOHO_NOTIFY_TOKEN="sandbox-notify-token",
        PUBLIC_BASE_URL="https://crmflow.example.com/webhooks/zoho",
    )

    done = subprocess.run(
        [sys.executable, "-m", "crmflow", role], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert "crmflow: invalid configuration (`crmflow doctor` checks it all)" in done.stderr
    assert "PUBLIC_BASE_URL: ends with a /webhooks path" in done.stderr
