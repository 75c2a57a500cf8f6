"""Helpers to run crmflow's real processes in tests: start (one process, a sandbox, or sandbox, receiver and
workers together), wait until ready, wait until idle, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from arq.constants import in_progress_key_prefix

from crmflow.embedded_redis import free_port
from sandbox.config import SandboxConfig
from workers import keys
from workers.contract import QUEUE_NAME

REPO = Path(__file__).resolve().parent.parent


def crmflow_env(**settings: str) -> dict[str, str]:
    """The current environment without crmflow's own settings, plus `settings`."""
    names = (
        "REDIS_URL",
        "RULES_PATH",
        "ZOHO_",
        "RECEIVER_",
        "WORKER_",
        "SANDBOX_",
        "CRM_",
        "SWEEP_",
        "EVENT_LOG_",
        "LOG_",
        "CONSOLE_",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return env | {"PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO"} | settings


def stack_env(redis_url: str, sandbox_url: str, **settings: str) -> dict[str, str]:
    """Settings for receiver and worker processes talking to the sandbox at `sandbox_url` (both CRMs).

    Workers do not sweep (SWEEP_INTERVAL_S=0) unless a test sets SWEEP_INTERVAL_S itself: a periodic sweep
    would queue jobs of its own, which tests counting jobs or waiting for an idle queue do not expect.
    """
    defaults = {
        "REDIS_URL": redis_url,
        "RULES_PATH": str(REPO / "rules" / "default.yaml"),
        "ZOHO_API_DOMAIN": sandbox_url,
        "ZOHO_ACCOUNTS_URL": sandbox_url,
        "ZOHO_CLIENT_ID": "sandbox-client-id",
        "ZOHO_CLIENT_SECRET": "sandbox-client-secret",
        "ZOHO_REFRESH_TOKEN": "sandbox-refresh-token",
        "HUBSPOT_API_BASE": sandbox_url,
        "HUBSPOT_ACCESS_TOKEN": "sandbox-hubspot-token",
        "SWEEP_INTERVAL_S": "0",
    }
    return crmflow_env(**(defaults | settings))


def sandbox_auth(zoho: httpx.Client) -> dict[str, str]:
    """An Authorization header from the sandbox's token endpoint, as any Zoho client gets one."""
    token = zoho.post("/oauth/v2/token", data=SandboxConfig().refresh_form()).json()["access_token"]
    return {"Authorization": f"Zoho-oauthtoken {token}"}


def start(args: list[str], env: Mapping[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`python -m crmflow ARGS` in `cwd` (away from any .env in the repo), output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "crmflow", *args], env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def idle(store: redis.Redis) -> bool:
    """Whether arq has no job queued, deferred or running.

    arq keeps a job in the queue (a sorted set scored by when it may run) from enqueue until it finishes or
    fails for good: a retry (`Retry(defer=...)`) moves its score forward, a job handed back on shutdown or
    left by a killed worker stays in it. So an empty queue means nothing waits or retries; no
    `arq:in-progress:*` key means no worker holds a job either.
    """
    return store.zcard(QUEUE_NAME) == 0 and not store.keys(f"{in_progress_key_prefix}*")


def wait_until_idle(
    store: redis.Redis,
    what: str = "the workers to finish",
    *,
    also: Callable[[], bool] = lambda: True,
    timeout_s: float = 30.0,
    recheck_s: float = 0.1,
) -> None:
    """Wait until `also()` holds (e.g. the sandbox has nothing left to send) and then arq is `idle`, seen twice
    `recheck_s` apart, so a job passing between states (or one just queued by a delivery) is not missed."""

    def settled() -> bool:
        if not (also() and idle(store)):
            return False
        time.sleep(recheck_s)
        return idle(store)

    wait_for(settled, what, timeout_s)


def hubspot_retries_done(log: list[dict[str, Any]]) -> bool:
    """Whether, by the sandbox's HubSpot webhook log (GET /_sandbox/hubspot/webhooks), no automatic retry is due:
    every batch numbered up to the highest logged one has had a 2xx answer to one of the sandbox's own attempts
    (a redelivery the test asked for does not stop the sandbox's retries).

    The sandbox keeps no outbox a test could read: a batch whose first attempt is still in flight is not in
    the log yet. A test that must know its changes went out looks for its own events in the log as well.
    """
    delivered = {
        entry["batch"]
        for entry in log
        if entry["redelivery_of"] is None and entry["status_code"] is not None and 200 <= entry["status_code"] < 300
    }
    return delivered == set(range(1, max((entry["batch"] for entry in log), default=0) + 1))


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_sandbox(
    tmp_path: Path, *args: str, env: Mapping[str, str] | None = None, log: Path | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """`crmflow sandbox ARGS` on a free port, answering: its URL and process (stopped here if it never answers).
    Its output goes to `log`, by default tmp_path/sandbox-PORT.log."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = log or tmp_path / f"sandbox-{port}.log"
    process = start(["sandbox", "--port", str(port), *args], crmflow_env() if env is None else env, tmp_path, log)
    try:
        wait_for(lambda: answers(f"{url}/_sandbox/history"), f"the sandbox\n{log.read_text()}")
    except BaseException:
        stop(process)
        raise
    return url, process


def logs_text(folder: Path) -> str:
    """Every process's log in `folder` (the *.log files), each under its name: for a failing test's message."""
    return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(folder.glob("*.log")))


@dataclass
class RunningStack:
    """What `start_stack` started: the sandbox's and the receiver's URLs, Redis, the folder of the logs, the
    processes."""

    sandbox: str
    receiver: str
    store: redis.Redis
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def logs_text(self) -> str:
        return logs_text(self.logs)

    def stop(self) -> None:
        """Stop every process, the last started first."""
        for process in reversed(self.processes):
            stop(process)


def start_stack(
    tmp_path: Path,
    redis_url: str,
    rules: str,
    *,
    sandbox_extra: Sequence[str] = (),
    workers: int = 1,
    notify_token: str = "e2e-notify-token",
    **settings: str,
) -> RunningStack:
    """Redis's test database emptied, then the sandbox (both CRMs), the receiver and `workers` workers, each ready.

    `rules` (YAML text) is written to tmp_path/rules.yaml, the workers' RULES_PATH. The sandbox sends Zoho's
    callbacks (with `notify_token`, on its default channel) and HubSpot's signed batches to the receiver;
    `sandbox_extra` are more of its arguments, `settings` more of the processes' (over `stack_env`'s). The
    workers start once the sandbox answers (they may read the CRMs' field lists at start-up). Logs:
    tmp_path/sandbox.log, receiver.log, worker.log (worker-N.log for several). On failure, what started is
    stopped; otherwise the caller stops it all with `RunningStack.stop`.
    """
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    sandbox = SandboxConfig()
    receiver_port = free_port()
    receiver = f"http://127.0.0.1:{receiver_port}"
    hooks = ["--notify-token", notify_token, "--notify-url", f"{receiver}/webhooks/zoho"]
    hooks += ["--hubspot-webhook-url", f"{receiver}/webhooks/hubspot"]
    sandbox_url, sandbox_process = start_sandbox(tmp_path, *hooks, *sandbox_extra, log=tmp_path / "sandbox.log")
    env = stack_env(
        redis_url,
        sandbox_url,
        RULES_PATH=str(path),
        ZOHO_NOTIFY_TOKEN=notify_token,
        ZOHO_CHANNEL_IDS=sandbox.channel_id,
        HUBSPOT_CLIENT_SECRET=sandbox.hubspot_client_secret,
        PUBLIC_BASE_URL=receiver,
        **settings,
    )
    stack = RunningStack(sandbox_url, receiver, store, tmp_path, [sandbox_process])
    try:
        stack.processes.append(
            start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log")
        )
        names = ["worker"] if workers == 1 else [f"worker-{n}" for n in range(workers)]
        stack.processes += [start(["worker"], env, tmp_path, tmp_path / f"{name}.log") for name in names]
        wait_for(lambda: answers(f"{receiver}/readyz"), f"the receiver\n{stack.logs_text()}")
        live = lambda: len(list(store.scan_iter(match=keys.WORKER_HEARTBEAT_PATTERN))) == workers  # noqa: E731
        wait_for(live, f"the workers\n{stack.logs_text()}")
    except BaseException:
        stack.stop()
        raise
    return stack
