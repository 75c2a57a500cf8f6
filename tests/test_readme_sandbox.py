"""README.md, "The whole stack against the sandbox": its shell blocks run literally, and a reschedule in each CRM
becomes a Zoho history row and a HubSpot note.

The README's fenced `sh` blocks of the section "without Docker" are run with bash as they are written, from the
checkout's root as the README assumes (the rules path is relative to it), with one set of substitutions for test
isolation, all in `Isolation.isolated` below: the ports 8000 and 8001 become free ports (other tests and programs
use those), the Redis URL becomes the test's own database, and `.venv/bin/` becomes the directory of the
interpreter running the tests (the same installation where `make` made it). The processes the first block starts
in the background are stopped at the end through their process group, which the test starts.

The container recipe ("in containers") cannot run here (no Docker engine); its two commands are checked to be
`cp .env.sandbox .env` and the sandbox profile's `up`, which tests/deploy/test_compose_stack.py runs as processes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from crmflow.embedded_redis import free_port
from tests.processes import REPO, answers, crmflow_env, wait_for
from workers import keys

README = (REPO / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The README's text under a `### title` heading, up to the next heading."""
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^#{{2,3}} )", README, flags=re.MULTILINE | re.DOTALL)
    assert match is not None, f"README.md has no section {title!r}"
    return match[1]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Isolation:
    receiver_port: int
    sandbox_port: int
    redis_url: str

    def isolated(self, block: str) -> str:
        """The README's block with this test's ports, Redis database and installation: the only changes made."""
        return (
            block.replace("redis://127.0.0.1:6379/0", self.redis_url)
            .replace(":8000", f":{self.receiver_port}")
            .replace("--port 8000", f"--port {self.receiver_port}")
            .replace(":8001", f":{self.sandbox_port}")
            .replace("--port 8001", f"--port {self.sandbox_port}")
            .replace(".venv/bin/", f"{Path(sys.executable).parent}/")
        )


def test_the_container_recipe_copies_env_sandbox_and_starts_the_sandbox_profile() -> None:
    (block,) = shell_blocks(section("The whole stack against the sandbox, in containers"))

    assert block.splitlines() == ["cp .env.sandbox .env", "docker compose --profile sandbox up -d"]
    assert (REPO / ".env.sandbox").is_file()


@dataclass
class Recipe:
    isolation: Isolation
    blocks: list[str]
    env: dict[str, str]

    def run(self, block: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", self.isolation.isolated(block)],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )


@pytest.fixture
def recipe(redis_url: str, tmp_path: Path) -> Iterator[Recipe]:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    isolation = Isolation(free_port(), free_port(), redis_url)
    blocks = shell_blocks(section("The whole stack against the sandbox, without Docker"))
    assert len(blocks) == 3, "the set-up, the reschedules, the look at the results"
    # A clean environment (no crmflow setting of the test run), as a newcomer's shell.
    env = crmflow_env()
    env.pop("PYTHONPATH")
    with (tmp_path / "stack.log").open("wb") as log:
        starter = subprocess.Popen(
            ["bash", "-e", "-c", isolation.isolated(blocks[0])],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the background processes are stopped with it
        )
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{isolation.receiver_port}/readyz"), "the receiver", 30)
        wait_for(lambda: answers(f"http://127.0.0.1:{isolation.sandbox_port}/_sandbox/webhooks"), "the sandbox", 30)
        wait_for(lambda: bool(list(store.scan_iter(match=keys.WORKER_HEARTBEAT_PATTERN))), "the worker", 30)
        yield Recipe(isolation, blocks, env)
    finally:
        os.killpg(starter.pid, signal.SIGTERM)
        starter.wait(timeout=10)
        wait_for(lambda: not answers(f"http://127.0.0.1:{isolation.receiver_port}/healthz"), "the receiver to stop")


def rows_and_notes(sandbox: httpx.Client) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = sandbox.get("/_sandbox/history").json()["data"]
    notes = sandbox.get("/_sandbox/hubspot/notes").json()["notes"]
    return rows, notes


@pytest.mark.slow
def test_the_readme_recipe_without_docker_logs_each_reschedule(recipe: Recipe) -> None:
    reschedules = recipe.run(recipe.blocks[1])
    with httpx.Client(base_url=f"http://127.0.0.1:{recipe.isolation.sandbox_port}", timeout=10) as sandbox:
        wait_for(lambda: all(rows_and_notes(sandbox)), "the history row and the note", 30)
        rows, notes = rows_and_notes(sandbox)
    looked = recipe.run(recipe.blocks[2])

    assert reschedules.returncode == 0, reschedules.stderr
    assert '"code":"SUCCESS"' in reschedules.stdout.replace(" ", "")
    assert [row["Appointment_Name"]["id"] for row in rows] == ["5545974000009000001"]
    assert (rows[0]["Rescheduled_From"], rows[0]["Rescheduled_To"]) == (
        "2027-01-12T10:00:00+00:00",
        "2027-01-12T14:00:00+00:00",
    )
    assert [note["associations"]["appointments"] for note in notes] == [["51204039001"]]
    assert looked.returncode == 0, looked.stderr
    assert "5545974000009000001" in looked.stdout and "51204039001" in looked.stdout
