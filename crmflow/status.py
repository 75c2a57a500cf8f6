"""`crmflow status [--json]`: the queue, live workers, dead letters, last notifications, channels and sweeps.

What it shows is read by workers/status.py (`collect_status`, which the console's health page uses too);
this module runs it against REDIS_URL and prints it, as text or as JSON. Text that came from Redis (a
duty's summary, a host name) is escaped, so that nothing stored there can repaint the operator's terminal.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

import click
from redis.exceptions import RedisError

from crmflow.dlq import DlqSettings
from crmflow.logs import escape
from crmflow.settings import SettingsError, load_settings
from workers import keys
from workers.queue import connect_queue
from workers.sources import all_sources
from workers.status import DutyRun, Status, collect_status

INDENT = "  "


def _when(moment: datetime | None, now: datetime) -> str:
    """'3m 12s ago (2026-11-30 09:00:00 UTC)'; 'never' for None. Pure."""
    if moment is None:
        return "never"
    shown = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    seconds = (now - moment).total_seconds()
    return f"just now ({shown})" if seconds < 1 else f"{span(seconds)} ago ({shown})"


def span(seconds: float) -> str:
    """'2d 4h', '3h 5m', '1m 15s', '12s' or '0.4s'. Pure."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s".replace(".0s", "s")
    whole = int(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _run(run: DutyRun | None, now: datetime) -> str:
    if run is None:
        return "never ran"
    moment = run.finished_at or run.started_at
    if run.state == "running":
        line = f"running since {_when(run.started_at, now)} on {run.owner}"
    else:
        line = f"{run.state} {_when(moment, now)}"
    detail = run.error if run.state == "failed" else run.summary
    return escape(f"{line}: {detail}" if detail else line)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{escape(code)} {count}" for code, count in counts.items())


def format_status(status: Status) -> str:
    """The status as text for a terminal, one fact per line. Pure."""
    now = status.at
    queue = status.queue
    oldest = "" if queue.oldest_age_s is None else f"; the oldest due job has waited {span(queue.oldest_age_s)}"
    lines = [
        f"crmflow status at {now.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')}",
        f"queue: {_plural(queue.depth, 'job')}, {queue.due} due{oldest}",
        f"workers alive: {len(status.workers)}",
    ]
    for worker in status.workers:
        sources = ", ".join(worker.sources) or "no CRM"
        lines.append(
            escape(
                f"{INDENT}{worker.host} pid {worker.pid} ({worker.worker_id}), version {worker.version}, {sources}; "
                f"up {span((now - worker.started_at).total_seconds())}, last beat {_when(worker.beat_at, now)}"
            )
        )
    total = status.deadletters_total
    lines.append(f"dead letters: {total}" + (f" ({_counts(status.deadletters)})" if total else ""))
    lines.append("last notification:")
    if not status.last_notifications:
        lines.append(f"{INDENT}none")
    forgotten_days = keys.LAST_NOTIFICATION_TTL_S // keys.DAY_S
    for source, moment in status.last_notifications.items():
        when = f"none in the last {forgotten_days} days" if moment is None else _when(moment, now)
        lines.append(escape(f"{INDENT}{source}: {when}"))
    lines.append(f"zoho channels: {_run(status.channels.upkeep, now)}")
    for channel_id, failure in status.channels.failures.items():
        lines.append(escape(f"{INDENT}{channel_id} not kept: {failure.reason} (at {failure.at}, by {failure.by})"))
    lines.append("sweeps:" + ("" if status.sweeps else " none ran"))
    for sweep in status.sweeps:
        lines.append(escape(f"{INDENT}{sweep.source}: {_run(sweep.last_run, now)}"))
        for module, cursor in sweep.cursors.items():
            lines.append(escape(f"{INDENT * 2}{module}: every change before {_when(cursor, now)} queued"))
    return "\n".join(lines)


async def read_status(redis_url: str, now: datetime) -> Status:
    redis = connect_queue(redis_url)
    try:
        return await collect_status(redis, now, sources=[source.name for source in all_sources()])
    finally:
        await redis.aclose()


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    return url if password is None else url.replace(f":{password}@", ":***@", 1)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (times in ISO 8601, UTC).")
def status(as_json: bool) -> None:
    """What crmflow is doing now: queue, live workers, dead letters, last notifications, channels, sweeps.

    Workers count as alive while their heartbeat is fresh: a killed worker is gone within seconds.
    """
    try:
        settings = load_settings(DlqSettings)
    except SettingsError as exc:
        click.echo("crmflow: invalid configuration", err=True)
        for line in str(exc).splitlines():
            click.echo(f"  {line}", err=True)
        sys.exit(2)
    try:
        found = asyncio.run(read_status(settings.redis_url, datetime.now(UTC)))
    except (RedisError, OSError) as exc:
        click.echo(f"crmflow: Redis at {_redacted(settings.redis_url)} failed: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_status(found))
