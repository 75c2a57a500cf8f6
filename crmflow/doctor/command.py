"""`crmflow doctor [--online] [--json]`, and the offline checks the receiver and the worker run at start-up.

The entry point of the doctor: it reads the settings (the environment over .env, as every crmflow process
does), loads the rules, opens the clients for --online, and hands all of it to the pure checks.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import click
import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from crmflow.doctor.findings import Finding, failed, line, render_json, render_text
from crmflow.doctor.offline import DEFAULTS, Role, offline_findings, role_findings
from crmflow.doctor.online import online_findings
from crmflow.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from workers.config import WorkerConfig
    from workers.rules.check import ExtraFields

logger = logging.getLogger("crmflow.doctor")
SettingsT = TypeVar("SettingsT", bound=BaseSettings)
# Every probe's answer comes well within this; a CRM that does not answer is named as unreachable.
HTTP_TIMEOUT_S = 10.0


class SettingsAsSet(BaseSettings):
    """The settings the checks read, as crmflow's settings classes read them (.env overlaid by the environment,
    names in any case, an empty value meaning "not set"), without their validation."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    rules_path: str | None = Field(default=None, validation_alias="RULES_PATH")
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    zoho_notify_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_NOTIFY_TOKEN")
    zoho_channel_ids: str | None = Field(default=None, validation_alias="ZOHO_CHANNEL_IDS")
    zoho_channel_check_s: str | None = Field(default=None, validation_alias="ZOHO_CHANNEL_CHECK_S")
    zoho_api_domain: str | None = Field(default=None, validation_alias="ZOHO_API_DOMAIN")
    zoho_accounts_url: str | None = Field(default=None, validation_alias="ZOHO_ACCOUNTS_URL")
    zoho_client_id: str | None = Field(default=None, validation_alias="ZOHO_CLIENT_ID")
    zoho_client_secret: SecretStr | None = Field(default=None, validation_alias="ZOHO_CLIENT_SECRET")
    zoho_refresh_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_REFRESH_TOKEN")
    hubspot_api_base: str | None = Field(default=None, validation_alias="HUBSPOT_API_BASE")
    hubspot_access_token: SecretStr | None = Field(default=None, validation_alias="HUBSPOT_ACCESS_TOKEN")
    hubspot_client_secret: SecretStr | None = Field(default=None, validation_alias="HUBSPOT_CLIENT_SECRET")


def read_environment() -> dict[str, str]:
    """The settings as set, by upper-case name (those not set left out)."""
    values = SettingsAsSet().model_dump()
    return {
        name.upper(): value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in values.items()
        if value is not None
    }


def _load(cls: type[SettingsT]) -> SettingsT | list[str]:
    try:
        return load_settings(cls)
    except SettingsError as exc:
        return str(exc).splitlines()


def _rules(path: str, extra_fields: ExtraFields | None = None) -> int | list[str]:
    """How many rules load (with the CRMs' field lists, when given), or every problem."""
    from workers.rules.check import NO_EXTRA_FIELDS
    from workers.rules.load import RuleFileError, load_rules

    try:
        return len(load_rules(path, extra_fields=extra_fields or NO_EXTRA_FIELDS).rules)
    except RuleFileError as exc:
        return exc.problems


def _rules_online(path: str, worker: WorkerConfig) -> int | list[str]:
    """The rules checked against the CRMs' own field lists too (custom fields), as a worker starting does."""
    from workers.field_lists import configured_field_lists
    from workers.rules.load import rule_targets

    lists = asyncio.run(configured_field_lists(worker, rule_targets(path), now=datetime.now(UTC)))
    outcome = _rules(path, lists.extra_fields())
    if isinstance(outcome, int):
        return outcome
    return outcome + [f"the CRM field list of {u} could not be read" for u in lists.unavailable]


def _where(redis_url: str) -> str:
    """Host, port and database of REDIS_URL, fit to print ("REDIS_URL" itself when it does not parse)."""
    try:
        parts = urlsplit(redis_url)
        port = parts.port or 6379
    except ValueError:
        return "REDIS_URL"
    return f"{parts.hostname}:{port}{parts.path}" if parts.hostname else parts.path or "REDIS_URL"


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
    rules = _rules(rules_path)
    if online and isinstance(rules, list) and isinstance(worker, WorkerConfig):
        rules = _rules_online(rules_path, worker)  # the rules may name custom fields
    findings = offline_findings(
        env,
        receiver_errors=receiver if isinstance(receiver, list) else None,
        worker_errors=worker if isinstance(worker, list) else None,
        rules_path=rules_path,
        rules=rules,
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
