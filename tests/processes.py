"""Helpers to run crmflow's real processes in tests: start, wait until ready, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from sandbox.config import SandboxConfig

REPO = Path(__file__).resolve().parent.parent


def crmflow_env(**settings: str) -> dict[str, str]:
    """The current environment without crmflow's own settings, plus `settings`."""
    names = ("REDIS_URL", "RULES_PATH", "ZOHO_", "RECEIVER_", "WORKER_", "SANDBOX_", "CRM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return env | {"PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO"} | settings


def stack_env(redis_url: str, sandbox_url: str, **settings: str) -> dict[str, str]:
    """Settings for receiver and worker processes talking to the sandbox at `sandbox_url` (both CRMs)."""
    return crmflow_env(
        REDIS_URL=redis_url,
        RULES_PATH=str(REPO / "rules" / "default.yaml"),
        ZOHO_API_DOMAIN=sandbox_url,
        ZOHO_ACCOUNTS_URL=sandbox_url,
        ZOHO_CLIENT_ID="sandbox-client-id",
        ZOHO_CLIENT_SECRET="sandbox-client-secret",
        ZOHO_REFRESH_TOKEN="sandbox-refresh-token",
        HUBSPOT_API_BASE=sandbox_url,
        HUBSPOT_ACCESS_TOKEN="sandbox-hubspot-token",
        **settings,
    )


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
