"""The sandbox profile of docker-compose.yml with .env.sandbox, run as real processes: a reschedule made through the
sandbox's control API becomes a Zoho history row and a HubSpot note; then every crmflow role's health check passes,
and so does `crmflow doctor --online` in the worker's environment.

There is no Docker engine where tests run, so each crmflow service runs as the container would run it: `crmflow`
(the image's entrypoint; here `python -m crmflow`, the same program) followed by the service's `command`, with the
service's `environment` interpolated from .env.sandbox as Compose does (`${NAME:-default}`). Only what the compose
network provides is substituted, in `Network.localise`, applied to every argument and setting alike:

- the host names: `redis://redis:6379/0` becomes the test's Redis (its own database), `receiver:8000` and
  `sandbox:8001` become 127.0.0.1 on free ports (on one machine the services cannot all have those ports);
- the listening address `0.0.0.0` becomes 127.0.0.1, and `--port 8000` / `--port=8001` the same free ports;
- `/app/rules`, where the worker's container mounts ./rules, becomes the repository's rules/.

Redis and the proxy are not crmflow processes (the proxy has tests/deploy/test_caddy.py); health checks are run
as the compose file gives them (`crmflow health ...` after "CMD"), localised the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from crmflow.embedded_redis import free_port
from tests.processes import REPO, answers, crmflow_env, sandbox_auth, start, stop, wait_for
from workers import keys

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ROLES = ("receiver", "sandbox", "worker")  # in the order their depends_on allow


def dotenv(path: Path) -> dict[str, str]:
    """NAME=value lines, as Compose reads a .env file (comments and blank lines skipped; no quoting used)."""
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(pairs)


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}` and `${NAME:-default}` (the only forms the file uses): unset or empty gives the default."""
    if "$" in INTERPOLATION.sub("", value):
        raise AssertionError(f"an interpolation this test does not know: {value}")
    return INTERPOLATION.sub(lambda match: variables.get(match[1]) or (match[2] or ""), value)


@dataclass(frozen=True)
class Network:
    """The compose network's names, mapped onto loopback for one test."""

    redis_url: str
    receiver_port: int
    sandbox_port: int

    def localise(self, text: str) -> str:
        replaced = (
            text.replace("redis://redis:6379/0", self.redis_url)
            .replace("receiver:8000", f"127.0.0.1:{self.receiver_port}")
            .replace("sandbox:8001", f"127.0.0.1:{self.sandbox_port}")
            .replace("0.0.0.0", "127.0.0.1")
            .replace("/app/rules", str(REPO / "rules"))
        )
        return re.sub(r"^--port=8001$", f"--port={self.sandbox_port}", replaced)

    def arguments(self, args: list[str]) -> list[str]:
        ports = {"8000": str(self.receiver_port), "8001": str(self.sandbox_port)}
        localised = [self.localise(arg) for arg in args]
        return [
            ports.get(arg, arg) if before == "--port" else arg
            for before, arg in zip(["", *localised], localised, strict=False)
        ]


def role(name: str, network: Network) -> tuple[list[str], dict[str, str]]:
    """The service's command line after `crmflow` and its environment, from the compose file and .env.sandbox."""
    service = COMPOSE["services"][name]
    variables = dotenv(REPO / ".env.sandbox")
    environment = {
        key: network.localise(interpolate(str(value), variables)) for key, value in service["environment"].items()
    }
    return network.arguments(service["command"]), environment


def health_check(name: str, network: Network) -> list[str]:
    test = COMPOSE["services"][name]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "crmflow"], test
    return network.arguments(test[2:])


@dataclass
class Stack:
    network: Network
    sandbox: httpx.Client
    store: redis.Redis
    environments: dict[str, dict[str, str]]
    cwd: Path


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    network = Network(redis_url, free_port(), free_port())
    processes: list[subprocess.Popen[bytes]] = []
    environments: dict[str, dict[str, str]] = {}
    try:
        ready = {
            "receiver": lambda: answers(f"http://127.0.0.1:{network.receiver_port}/readyz"),
            "sandbox": lambda: answers(f"http://127.0.0.1:{network.sandbox_port}/_sandbox/webhooks"),
            "worker": lambda: bool(list(store.scan_iter(match=keys.WORKER_HEARTBEAT_PATTERN))),
        }
        # One after the other, so that the worker's first channel upkeep finds the sandbox up (under Compose a
        # worker may come first: its upkeep then fails and is tried again a minute later).
        for name in ROLES:
            args, environment = role(name, network)
            environments[name] = crmflow_env(**environment)
            processes.append(start(args, environments[name], tmp_path, tmp_path / f"{name}.log"))
            wait_for(ready[name], f"the {name}", 30)
        with httpx.Client(base_url=f"http://127.0.0.1:{network.sandbox_port}", timeout=10) as sandbox:
            yield Stack(network, sandbox, store, environments, tmp_path)
    finally:
        for process in processes:
            stop(process)


def history_rows(sandbox: httpx.Client, record_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = sandbox.get("/_sandbox/history").json()["data"]
    return [row for row in rows if row["Appointment_Name"]["id"] == record_id]


def notes_on(sandbox: httpx.Client, appointment_id: str) -> list[dict[str, Any]]:
    notes: list[dict[str, Any]] = sandbox.get("/_sandbox/hubspot/notes").json()["notes"]
    return [note for note in notes if appointment_id in note["associations"]["appointments"]]


def channel_upkeep(store: redis.Redis) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = store.hgetall(keys.duty_state("zoho-channels"))  # type: ignore[assignment]
    return state


@pytest.mark.slow
def test_the_sandbox_profile_turns_a_reschedule_into_a_history_row_and_a_note(stack: Stack) -> None:
    sandbox = stack.sandbox
    zoho_id, hubspot_id = "5545974000009000001", "51204039001"

    created = sandbox.post(
        "/_sandbox/appointments",
        json={
            "id": zoho_id,
            "Appointment_Name": "Boiler Service",
            "Appointment_Start_Time": "2027-01-12T10:00:00+00:00",
        },
    )
    moved = sandbox.patch(
        f"/_sandbox/appointments/{zoho_id}",
        json={"Appointment_Start_Time": "2027-01-12T14:00:00+00:00", "Reschedule_Reason": "By Customer"},
    )
    hs_created = sandbox.post(
        "/_sandbox/hubspot/appointments",
        json={"id": hubspot_id, "properties": {"hs_appointment_start": "2027-01-13T10:00:00Z"}},
    )
    hs_moved = sandbox.patch(
        f"/_sandbox/hubspot/appointments/{hubspot_id}",
        json={"properties": {"hs_appointment_start": "2027-01-13T15:00:00Z"}},
    )
    wait_for(lambda: len(history_rows(sandbox, zoho_id)) == 1, "the Zoho history row", 30)
    wait_for(lambda: len(notes_on(sandbox, hubspot_id)) == 1, "the HubSpot note", 30)
    wait_for(lambda: channel_upkeep(stack.store).get(b"state") in (b"ok", b"failed"), "the worker's channel upkeep", 30)

    assert (created.status_code, moved.status_code, hs_created.status_code, hs_moved.status_code) == (
        201,
        200,
        201,
        200,
    )
    [row] = history_rows(sandbox, zoho_id)
    assert (
        row["Rescheduled_From"] == "2027-01-12T10:00:00+00:00" and row["Rescheduled_To"] == "2027-01-12T14:00:00+00:00"
    )
    deliveries = sandbox.get("/_sandbox/notifications").json()["deliveries"]
    assert {entry["status_code"] for entry in deliveries} == {200}  # the notify token matched
    webhooks = sandbox.get("/_sandbox/hubspot/webhooks").json()["deliveries"]
    assert webhooks and {entry["status_code"] for entry in webhooks} == {200}  # the v3 signature matched
    # The workers keep the sandbox's own channel (ZOHO_CHANNEL_IDS), calling PUBLIC_BASE_URL/webhooks/zoho: the
    # sandbox's --notify-url. The sandbox's channel is as crmflow makes it: they find it well and leave it alone.
    upkeep = channel_upkeep(stack.store)
    assert upkeep[b"state"] == b"ok" and upkeep[b"summary"].startswith(b"1000000068001 ok: "), upkeep
    [channel] = sandbox.get("/crm/v7/actions/watch", headers=sandbox_auth(sandbox)).json()["watch"]
    notify_url = stack.network.localise("http://receiver:8000/webhooks/zoho")
    assert (channel["channel_id"], channel["notify_url"]) == ("1000000068001", notify_url)

    for name in ROLES:
        result = subprocess.run(
            [sys.executable, "-m", "crmflow", *health_check(name, stack.network)],
            env=stack.environments[name],
            cwd=stack.cwd,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, (name, result.stderr)

    # The configuration doctor, run in the worker's container as an operator would (`docker compose exec worker
    # crmflow doctor --online`): everything the stack needs holds, with warnings only (the http PUBLIC_BASE_URL).
    doctor = subprocess.run(
        [sys.executable, "-m", "crmflow", "doctor", "--online"],
        env=stack.environments["worker"],
        cwd=stack.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "PUBLIC_BASE_URL" in doctor.stdout
