"""Helpers to run crmflow's real processes in tests: start, wait until ready, stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def crmflow_env(**settings: str) -> dict[str, str]:
    """The current environment without crmflow's own settings, plus `settings`."""
    names = ("REDIS_URL", "RULES_PATH", "ZOHO_", "RECEIVER_", "WORKER_", "SANDBOX_", "CRM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(names)}
    return env | {"PYTHONPATH": str(REPO), "LOG_LEVEL": "INFO"} | settings


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
