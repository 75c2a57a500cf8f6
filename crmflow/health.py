"""`crmflow health worker|receiver|sandbox`: one role's liveness for a container health check (exit 0 or 1).

Each command prints one line: what it found (exit 0), or why the role is not healthy (exit 1). They take no
secrets on their command line and print none: the worker's check reads REDIS_URL from the environment (shown
without its password), the HTTP checks call loopback.

- worker: a live heartbeat (workers/heartbeat.py) from a worker process on this host (the container's host
  name, so each worker container checks its own process); it goes stale within seconds of the process's death.
  Compose runs one worker process per container; where one host runs several, `--pid PID` checks that one
  process and `--expect N` wants at least N live on the host, so that one dead worker among several shows.
- receiver: GET /readyz on loopback answers 200 (Redis takes writes).
- sandbox: GET /_sandbox/webhooks on loopback answers 200 (a read with no side effect).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import urlsplit

import click
import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmflow.settings import SettingsError, load_settings
from workers.heartbeat import WorkerFacts, live_workers

TIMEOUT_S = 3.0


class HealthSettings(BaseSettings):
    """What `crmflow health worker` needs: the Redis the workers beat in."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")


# --- Verdicts (pure) ----------------------------------------------------------------------------------------


def worker_verdict(
    live: list[WorkerFacts], host: str, now: datetime, *, pid: int | None = None, expect: int = 1
) -> tuple[bool, str]:
    """Whether a worker on `host` is live, from the live heartbeats (`live_workers`): the one with `pid` if
    given, else at least `expect` of them. Pure."""
    mine = [facts for facts in live if facts.host == host]
    if not mine:
        others = f" ({len(live)} live on other hosts)" if live else " (none on any host)"
        return False, f"no live worker heartbeat from host {host}{others}"
    if pid is not None:
        chosen = [facts for facts in mine if facts.pid == pid]
        if not chosen:
            pids = ", ".join(str(facts.pid) for facts in mine)
            return False, f"no live worker heartbeat from pid {pid} on host {host} (live: pid {pids})"
        mine = chosen
    elif len(mine) < expect:
        pids = ", ".join(str(facts.pid) for facts in mine)
        return False, f"only {len(mine)} of {expect} expected workers live on host {host} (pid {pids})"
    latest = max(mine, key=lambda facts: facts.beat_at)
    age_s = max((now - latest.beat_at).total_seconds(), 0.0)
    count = f"{len(mine)} workers" if len(mine) > 1 else "worker"
    return True, f"{count} live on {host}: {latest.worker_id} (pid {latest.pid}) beat {age_s:.1f}s ago"


def http_verdict(what: str, url: str, status_code: int | None, error: str | None) -> tuple[bool, str]:
    """Whether an HTTP health endpoint answered 200 (`error`: why no answer came). Pure."""
    if error is not None:
        return False, f"{what} did not answer at {url}: {error}"
    if status_code != 200:
        return False, f"{what} answered {status_code} at {url}"
    return True, f"{what} ok at {url}"


def redacted(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


# --- I/O ----------------------------------------------------------------------------------------------------


async def _live_heartbeats(redis_url: str, now: datetime) -> list[WorkerFacts]:
    redis = Redis.from_url(redis_url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        return await live_workers(redis, now)
    finally:
        await redis.aclose()


def _get(what: str, url: str) -> tuple[bool, str]:
    try:
        response = httpx.get(url, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        return http_verdict(what, url, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return http_verdict(what, url, response.status_code, None)


def _answer(healthy: bool, line: str) -> NoReturn:
    if healthy:
        click.echo(line)
        sys.exit(0)
    click.echo(f"crmflow: unhealthy: {line}", err=True)
    sys.exit(1)


@click.group()
def health() -> None:
    """Whether a crmflow process here is alive: exit 0, or 1 with one line saying why not (container checks)."""


@health.command("worker")
@click.option("--host", "host", default=None, help="Check workers on this host name (default: this host's).")
@click.option("--pid", type=click.IntRange(min=1), default=None, help="Check this worker process on the host.")
@click.option(
    "--expect",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Live worker processes wanted on the host (several per host: one dead among them fails the check).",
)
def health_worker(host: str | None, pid: int | None, expect: int) -> None:
    """A live heartbeat from a worker process on this host (stale within seconds of its death)."""
    if pid is not None and expect != 1:
        raise click.UsageError("--pid checks one process: give --pid or --expect, not both")
    try:
        settings = load_settings(HealthSettings)
    except SettingsError as exc:
        _answer(False, f"invalid configuration: {' '.join(str(exc).split())}")
    name = host or socket.gethostname()
    now = datetime.now(UTC)
    try:
        live = asyncio.run(_live_heartbeats(settings.redis_url, now))
    except (RedisError, OSError) as exc:
        _answer(False, f"Redis at {redacted(settings.redis_url)} is unavailable ({type(exc).__name__}: {exc})")
    _answer(*worker_verdict(live, name, now, pid=pid, expect=expect))


@health.command("receiver")
@click.option("--port", default=8000, show_default=True, envvar="RECEIVER_PORT", type=int)
def health_receiver(port: int) -> None:
    """GET /readyz of the receiver on loopback answers 200 (it can queue: Redis takes writes)."""
    _answer(*_get("receiver", f"http://127.0.0.1:{port}/readyz"))


@health.command("sandbox")
@click.option("--port", default=8001, show_default=True, envvar="SANDBOX_PORT", type=int)
def health_sandbox(port: int) -> None:
    """GET /_sandbox/webhooks of the sandbox on loopback answers 200."""
    _answer(*_get("sandbox", f"http://127.0.0.1:{port}/_sandbox/webhooks"))
