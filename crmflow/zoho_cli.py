"""Zoho watch channels from the command line: `crmflow zoho subscribe | channels | renew | unsubscribe`.

The settings (ZohoSettings) are read by the `crmflow zoho` group in crmflow/cli.py; each command checks that
those it needs are set. The channel token (ZOHO_NOTIFY_TOKEN) is sent to Zoho and never printed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import click
import httpx
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import config
from workers.channel_upkeep import SCOPE, ChannelFailures, Failure, keep_channels, subscribe
from workers.channels import RENEW_WITHIN, Outcome, Wanted, shown_url, time_left
from workers.config import Edition
from workers.crm.limits import edition_concurrency
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_watch_models import WatchChannel
from workers.errors import CrmError
from workers.sources.zoho import zoho_client

T = TypeVar("T")
_ZOHO = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN")


# How long a command's Zoho call may wait for the org's shared limiter (workers/crm/limits.py).
COMMAND_WAIT_S = 30.0


class ZohoSettings(BaseSettings):
    """What the zoho commands read: the worker's Zoho settings and the channels' (all optional here; each
    command names those it lacks)."""

    # An empty value (`NAME=` in .env or the environment) means "not set", so a CRM left blank is simply off.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    zoho_api_domain: str = Field(default="https://www.zohoapis.com", validation_alias="ZOHO_API_DOMAIN")
    zoho_accounts_url: str = Field(default="https://accounts.zoho.com", validation_alias="ZOHO_ACCOUNTS_URL")
    zoho_client_id: str | None = Field(default=None, min_length=1, validation_alias="ZOHO_CLIENT_ID")
    zoho_client_secret: SecretStr | None = Field(default=None, validation_alias="ZOHO_CLIENT_SECRET")
    zoho_refresh_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_REFRESH_TOKEN")
    public_base_url: str | None = Field(default=None, validation_alias="PUBLIC_BASE_URL")
    zoho_channel_ids: Annotated[tuple[str, ...], NoDecode] = Field(default=(), validation_alias="ZOHO_CHANNEL_IDS")
    zoho_notify_token: SecretStr | None = Field(default=None, validation_alias="ZOHO_NOTIFY_TOKEN")
    http_timeout_s: float = Field(default=10.0, gt=0, le=120, validation_alias="CRM_HTTP_TIMEOUT_S")
    # The org's concurrency cap, which these commands share with the workers (workers/crm/limits.py).
    zoho_edition: Edition = Field(default="professional", validation_alias="ZOHO_EDITION")
    zoho_max_concurrency: int | None = Field(default=None, ge=1, le=100, validation_alias="ZOHO_MAX_CONCURRENCY")

    # The same checks as the worker's (workers/config.py), so that a value one accepts the other accepts.
    @field_validator("zoho_api_domain", "zoho_accounts_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return config.base_url(value)

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return config.public_url(value)

    @field_validator("zoho_channel_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        return config.channel_ids(value)

    @field_validator("zoho_notify_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        return config.notify_token(value)

    @field_validator("zoho_client_secret", "zoho_refresh_token")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        return config.not_blank(value)

    def missing(self, *, channels: bool) -> list[str]:
        """One line per setting a command needs and lacks: Zoho's credentials, and with `channels` the channels'."""
        given = (self.zoho_client_id, self.zoho_client_secret, self.zoho_refresh_token)
        pairs = zip(_ZOHO, given, strict=True)
        lines = [f"{name}: is not set; the zoho commands call Zoho" for name, value in pairs if value is None]
        if channels:
            if not self.public_base_url:
                lines.append("PUBLIC_BASE_URL: is not set; Zoho calls PUBLIC_BASE_URL/webhooks/zoho")
            if not self.zoho_channel_ids:
                lines.append("ZOHO_CHANNEL_IDS: is not set; name the channel ids to keep (comma-separated numbers)")
            if self.zoho_notify_token is None:
                lines.append("ZOHO_NOTIFY_TOKEN: is not set; each channel carries the token the receiver checks")
        return lines

    def wanted(self) -> Wanted:
        if not self.public_base_url or not self.zoho_channel_ids or self.zoho_notify_token is None:
            raise RuntimeError("wanted() before the channel settings were checked")
        return Wanted(self.zoho_channel_ids, self.public_base_url, self.zoho_notify_token)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"crmflow: {message}", err=True)
    sys.exit(code)


def _settings(*, channels: bool) -> ZohoSettings:
    settings = click.get_current_context().find_object(ZohoSettings)
    if settings is None:
        raise RuntimeError("the zoho commands run under the `crmflow zoho` group, which reads their settings")
    lines = settings.missing(channels=channels)
    if lines:
        click.echo("crmflow: invalid configuration", err=True)
        for line in lines:
            click.echo(f"  {line}", err=True)
        sys.exit(2)
    return settings


@dataclass(frozen=True)
class Session:
    client: ZohoClient
    failures: ChannelFailures


async def _session(settings: ZohoSettings, work: Callable[[Session], Awaitable[T]]) -> T:
    if settings.zoho_client_id is None or settings.zoho_client_secret is None or settings.zoho_refresh_token is None:
        raise RuntimeError("a session before Zoho's credentials were checked")
    redis: Redis = Redis.from_url(settings.redis_url)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(settings.http_timeout_s, connect=5.0)) as http:
            client = zoho_client(
                redis,
                http,
                api_domain=settings.zoho_api_domain,
                accounts_url=settings.zoho_accounts_url,
                client_id=settings.zoho_client_id,
                client_secret=settings.zoho_client_secret,
                refresh_token=settings.zoho_refresh_token,
                http_timeout_s=settings.http_timeout_s,
                concurrency=settings.zoho_max_concurrency or edition_concurrency(settings.zoho_edition),
                # A command may wait longer than a job for a slot: nothing else is held meanwhile.
                max_wait_s=COMMAND_WAIT_S,
            )
            return await work(Session(client, ChannelFailures(redis)))
    finally:
        await redis.aclose()


def _where(redis_url: str) -> str:
    parts = urlsplit(redis_url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}" if parts.hostname else parts.path


def _run(settings: ZohoSettings, work: Callable[[Session], Awaitable[T]]) -> T:
    """Run `work` with a Zoho client; exit 1 when Zoho or Redis fails."""
    try:
        return asyncio.run(_session(settings, work))
    except CrmError as exc:
        hint = f" (the refresh token needs the scope {SCOPE})" if exc.code == "OAUTH_SCOPE_MISMATCH" else ""
        _fail(f"Zoho failed: {' '.join(str(exc).split())}{hint}", code=1)
    except (RedisError, OSError) as exc:
        _fail(f"Redis at {_where(settings.redis_url)} failed: {type(exc).__name__}: {exc}", code=1)


def _now() -> datetime:
    return datetime.now(UTC)


def _report(outcomes: list[Outcome], now: datetime) -> None:
    """One line per channel; exit 1 when any could not be kept."""
    for o in outcomes:
        if o.error is not None:
            click.echo(f"{o.channel_id}: {o.done} ({o.why}): {o.error}", err=True)
        elif o.expires_at is not None:
            left = time_left(o.expires_at, now)
            click.echo(f"{o.channel_id}: {o.done}; Zoho granted an expiry of {o.expires_at.isoformat()} ({left} left)")
    if any(o.error is not None for o in outcomes):
        sys.exit(1)


def _keep(outcomes_of: Callable[[Session, datetime], Awaitable[list[Outcome]]], by: str) -> None:
    settings = _settings(channels=True)
    wanted_ids = settings.wanted().channel_ids
    now = _now()

    async def work(session: Session) -> list[Outcome]:
        outcomes = await outcomes_of(session, now)
        await session.failures.forget_unwanted(wanted_ids)
        await session.failures.record(outcomes, now, by=by)
        return outcomes

    _report(_run(settings, work), now)


@click.command("subscribe")
def subscribe_command() -> None:
    """Enable (POST) each channel in ZOHO_CHANNEL_IDS for appointments, expiring just under a week ahead."""
    wanted = _settings(channels=True).wanted()
    _keep(lambda session, now: subscribe(session.client, wanted, now), by="crmflow zoho subscribe")


@click.command("renew")
def renew_command() -> None:
    """Renew (PATCH, full body) each channel in ZOHO_CHANNEL_IDS; enable again (POST) those Zoho no longer has."""
    wanted = _settings(channels=True).wanted()
    _keep(lambda session, now: keep_channels(session.client, wanted, now, renew_all=True), by="crmflow zoho renew")


@click.command("unsubscribe")
@click.argument("channel_ids", nargs=-1)
def unsubscribe_command(channel_ids: tuple[str, ...]) -> None:
    """Disable the given channels (default: those in ZOHO_CHANNEL_IDS)."""
    settings = _settings(channels=False)
    ids = list(channel_ids or settings.zoho_channel_ids)
    if not ids:
        _fail("no channel to unsubscribe: name channel ids, or set ZOHO_CHANNEL_IDS", code=2)
    if any(not cid.isdigit() for cid in ids):
        _fail("channel ids are numbers (Zoho's channel_id is a long)", code=2)

    async def work(session: Session) -> dict[str, CrmError | None]:
        results: dict[str, CrmError | None] = dict(await session.client.disable_channels(ids))
        await session.failures.forget([cid for cid, error in results.items() if error is None])
        return results

    results = _run(settings, work)
    for cid, error in results.items():
        if error is None:
            click.echo(f"{cid}: unsubscribed")
        else:
            click.echo(f"{cid}: not unsubscribed: {error}", err=True)
    kept = [cid for cid, error in results.items() if error is None and cid in settings.zoho_channel_ids]
    if kept:
        click.echo(
            f"note: {', '.join(kept)} still in ZOHO_CHANNEL_IDS: workers keeping channels enable "
            f"{'it' if len(kept) == 1 else 'them'} again at their next check unless removed from it"
        )
    if any(error is not None for error in results.values()):
        sys.exit(1)


def channel_rows(
    have: dict[str, WatchChannel], wanted_ids: tuple[str, ...], failures: dict[str, Failure], now: datetime
) -> list[dict[str, Any]]:
    """What `crmflow zoho channels` shows: Zoho's channels, then the wanted ones Zoho lacks. Never the token."""
    rows: list[dict[str, Any]] = []
    for cid in [*have, *(cid for cid in wanted_ids if cid not in have)]:
        channel = have.get(cid)
        failure = failures.get(cid)
        left_s = int((channel.expires_at - now).total_seconds()) if channel and channel.expires_at else None
        if channel is None:
            status = "missing"
        elif left_s is not None and left_s <= RENEW_WITHIN.total_seconds():
            status = "renewal due"
        else:
            status = "active"
        rows.append(
            {
                "channel_id": cid,
                "wanted": cid in wanted_ids,
                "status": status,
                "events": list(channel.events) if channel else [],
                "notify_url": shown_url(channel.notify_url) if channel else None,
                "channel_expiry": channel.expires_at.isoformat() if channel and channel.expires_at else None,
                "expires_in_s": left_s,
                "time_left": time_left(channel.expires_at, now) if channel else None,
                "has_token": channel.token is not None if channel else None,
                "return_affected_field_values": channel.return_affected_field_values if channel else None,
                "notify_on_related_action": channel.notify_on_related_action if channel else None,
                "last_failure": None if failure is None else vars(failure),
            }
        )
    return rows


@click.command("channels")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines of text.")
def channels_command(as_json: bool) -> None:
    """The channels Zoho has (events, notify URL, time left) and the wanted ones it lacks; never the token."""
    settings = _settings(channels=False)
    now = _now()

    async def work(session: Session) -> tuple[dict[str, WatchChannel], dict[str, Failure]]:
        return await session.client.list_channels(), await session.failures.all()

    have, failures = _run(settings, work)
    rows = channel_rows(have, settings.zoho_channel_ids, failures, now)
    if as_json:
        click.echo(json.dumps({"channels": rows}, indent=2))
        return
    if not rows:
        click.echo("no channels: Zoho has none, and ZOHO_CHANNEL_IDS names none")
        return
    for row in rows:
        mark = "" if row["wanted"] or not settings.zoho_channel_ids else " (not in ZOHO_CHANNEL_IDS)"
        if row["status"] == "missing":
            click.echo(f"{row['channel_id']}: missing (in ZOHO_CHANNEL_IDS, but Zoho does not have it)")
        else:
            click.echo(
                f"{row['channel_id']}{mark}: {row['status']}, {row['time_left']} left (until {row['channel_expiry']}); "
                f"events {', '.join(row['events'])}; notify_url {row['notify_url']}"
            )
        if row["last_failure"] is not None:
            failure = row["last_failure"]
            click.echo(f"  could not be kept ({failure['at']}, {failure['by']}): {failure['reason']}")


COMMANDS = [subscribe_command, channels_command, renew_command, unsubscribe_command]
