"""`crmflow doctor [--online] [--json]`, and the offline checks the receiver and the worker run at start-up.

The entry point of the doctor: it reads the settings (the environment over .env, as every crmflow process
does), loads the rules, opens the clients for --online, and hands all of it to the pure checks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import click
import httpx
from dotenv import dotenv_values
from pydantic_settings import BaseSettings
from redis.asyncio import Redis

from crmflow.doctor.findings import Finding, failed, line, render_json, render_text
from crmflow.doctor.offline import DEFAULTS, Role, offline_findings, role_findings
from crmflow.doctor.online import online_findings
from crmflow.settings import SettingsError, load_settings

logger = logging.getLogger("crmflow.doctor")
SettingsT = TypeVar("SettingsT", bound=BaseSettings)
# Every probe's answer comes well within this; a CRM that does not answer is named as unreachable.
HTTP_TIMEOUT_S = 10.0


def read_environment(dotenv: Path = Path(".env")) -> dict[str, str]:
    """The settings as crmflow's settings classes see them: .env overlaid by the environment, names in upper
    case, empty values left out (an empty value means "not set")."""
    values = {name.upper(): value for name, value in dotenv_values(dotenv).items() if value} if dotenv.is_file() else {}
    values.update({name.upper(): value for name, value in os.environ.items() if value})
    return values


def _load(cls: type[SettingsT]) -> SettingsT | list[str]:
    try:
        return load_settings(cls)
    except SettingsError as exc:
        return str(exc).splitlines()


def _rules(path: str) -> int | list[str]:
    from workers.rules.load import RuleFileError, load_rules

    try:
        return len(load_rules(path).rules)
    except RuleFileError as exc:
        return exc.problems


def _where(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}" if parts.hostname else parts.path or redis_url


async def _online(env: dict[str, str], worker: object) -> list[Finding]:
    from workers.config import WorkerConfig

    redis_url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis: Redis | None = Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    except ValueError:
        redis = None
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(HTTP_TIMEOUT_S, connect=5.0)) as http:
            return await online_findings(
                env,
                redis=redis,
                redis_where=_where(redis_url),
                worker=worker if isinstance(worker, WorkerConfig) else None,
                http=http,
                now=datetime.now(UTC),
            )
    finally:
        if redis is not None:
            await redis.aclose()


@click.command()
@click.option("--online", is_flag=True, help="Also ask Redis, Zoho and HubSpot (a few calls that change nothing).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(online: bool, as_json: bool) -> None:
    """Check the configuration: every setting, each source on or off and why, the rules; exit 1 on a failure."""
    from receiver.config import ReceiverConfig
    from workers.config import WorkerConfig

    env = read_environment()
    receiver = _load(ReceiverConfig)
    worker = _load(WorkerConfig)
    rules_path = (
        worker.rules_path if isinstance(worker, WorkerConfig) else env.get("RULES_PATH", DEFAULTS["RULES_PATH"])
    )
    findings = offline_findings(
        env,
        receiver_errors=receiver if isinstance(receiver, list) else None,
        worker_errors=worker if isinstance(worker, list) else None,
        rules_path=rules_path,
        rules=_rules(rules_path),
    )
    if online:
        findings += asyncio.run(_online(env, worker))
    click.echo(render_json(findings) if as_json else render_text(findings))
    sys.exit(1 if failed(findings) else 0)


def startup_problems(role: Role) -> list[str]:
    """The offline checks of one role, at its start-up: warnings are logged, failures returned as lines
    (`SETTING: message (fix: ...)`) for the caller to refuse to start with. No network."""
    findings = role_findings(role, read_environment())
    for finding in findings:
        if finding.status == "warn":
            logger.warning("%s: %s", finding.check, line(finding))
    return [line(finding) for finding in findings if finding.status == "fail"]
