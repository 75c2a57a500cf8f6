"""`crmflow sweep`: run a reconciliation sweep from the command line, with progress on a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

import click
import httpx

from workers import sources
from workers.checkpoints import Checkpoints
from workers.config import WorkerConfig
from workers.queue import connect_queue
from workers.sweep import SweepResult, sweep_source


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO 8601 time with an offset (or Z), not in the future; ValueError saying what is wrong. Pure."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r} is not an ISO 8601 time (e.g. 2026-11-30T06:00:00Z)") from None
    if moment.tzinfo is None:
        raise ValueError(f"--since {text!r} has no offset: add Z or one such as +01:00")
    if moment > now:
        raise ValueError(f"--since {text!r} is in the future")
    return moment.astimezone(UTC)


class Progress:
    """On a terminal, one line on stderr redrawn after every page; otherwise nothing until the summary."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._drawn = False

    def page(self, result: SweepResult) -> None:
        if not self._live:
            return
        bar = "#" * min(result.pages, 30)
        line = (
            f"\rsweep {result.source}/{result.module} [{bar:<30}] page {result.pages}: "
            f"{result.found} found, {result.queued} queued, {result.already_queued} already queued"
        )
        self._stream.write(line)
        self._stream.flush()
        self._drawn = True

    def done(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False


async def run_sweeps(
    config: WorkerConfig,
    names: Sequence[str],
    *,
    since: datetime | None,
    now: datetime,
    progress: Progress,
) -> list[SweepResult]:
    """Sweep each named source (configured in `config`), one after the other; the results of every module."""
    redis = connect_queue(config.redis_url)
    results: list[SweepResult] = []
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(config.http_timeout_s, connect=5.0)) as http:
            checkpoints = Checkpoints(redis, config.test_pause_at)
            for name in names:
                source: Any = sources.source_named(name)
                client = source.connect(config, redis, http) if source is not None else None
                if source is None or client is None:
                    continue
                results += await sweep_source(
                    redis,
                    source,
                    client,
                    now=now,
                    lookback_s=config.sweep_lookback_s,
                    since=since,
                    on_page=progress.page,
                    checkpoints=checkpoints,
                )
                progress.done()
    finally:
        progress.done()
        await redis.aclose()
    return results


def report(results: Sequence[SweepResult]) -> int:
    """Print one summary line per module swept (stdout), the reasons of incomplete ones (stderr); exit code."""
    for result in results:
        click.echo(result.summary())
    failed = [result for result in results if not result.complete]
    for result in failed:
        if result.too_large is not None or result.skipped:  # its error says what the operator can do
            click.echo(f"crmflow: the sweep of {result.source}/{result.module} cannot go on: {result.error}", err=True)
            continue
        click.echo(
            f"crmflow: the sweep of {result.source}/{result.module} did not queue everything: {result.error}; "
            "its cursor stays where its queued pages took it, so the next sweep goes on from there",
            err=True,
        )
    return 1 if failed else 0
