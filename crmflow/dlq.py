"""Dead letters from the command line: `crmflow dlq list | show | replay | purge`, as text or JSON."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import click
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.exceptions import RedisError

from workers.deadletters import DeadLetter, DeadLetters, LetterFilter
from workers.errors import QueueUnavailableError
from workers.queue import connect_queue
from workers.record import parse_datetime
from workers.replay import Outcome, replay_letter, unreplayable

if TYPE_CHECKING:
    from arq.connections import ArqRedis

T = TypeVar("T")
FC = TypeVar("FC", bound=Callable[..., Any])

MESSAGE_WIDTH = 60
COLUMNS = ("id", "last failure (UTC)", "age", "source", "module", "record", "rule/action", "error", "tries", "message")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class DlqSettings(BaseSettings):
    """What the dlq commands need: the Redis holding the queue and the dead letters."""

    # An empty value (`NAME=` in .env or the environment) means "not set", so a CRM left blank is simply off.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")


# --- Options ---------------------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """A duration such as 45s, 30m, 12h, 7d or 2w; ValueError otherwise."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 12h or 7d (units s, m, h, d, w)")
    try:
        return timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    """click callback: a duration such as 30m, 12h or 7d (also `crmflow events`)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _filter_options(command: FC) -> FC:
    options = [
        click.option("--source", help="Only letters from this source (zoho, hubspot)."),
        click.option("--error", "error_code", help="Only letters with this error code, e.g. NOT_ALLOWED."),
        click.option(
            "--older-than",
            callback=duration,
            metavar="DURATION",
            help="Only letters whose last failure is older, e.g. 7d.",
        ),
        click.option(
            "--newer-than",
            callback=duration,
            metavar="DURATION",
            help="Only letters whose last failure is newer, e.g. 12h.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def letter_filter(
    now: datetime,
    source: str | None = None,
    error_code: str | None = None,
    older_than: timedelta | None = None,
    newer_than: timedelta | None = None,
) -> LetterFilter:
    """The store's filter for the command-line filters, ages counted back from `now`."""
    before = None if older_than is None else now - older_than
    after = None if newer_than is None else now - newer_than
    return LetterFilter(source=source, error_code=error_code, failed_before=before, failed_after=after)


# --- Text ------------------------------------------------------------------------------------------------


def age(delta: timedelta) -> str:
    """An age in its largest whole unit, as the filters take it: 40s, 12m, 5h, 3d."""
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _truncate(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _rule_action(letter: DeadLetter) -> str:
    return "/".join(part for part in (letter.rule, letter.action) if part) or "-"


def _row(letter: DeadLetter, now: datetime) -> tuple[str, ...]:
    return (
        letter.id,
        _when(letter.last_failed_at),
        age(now - letter.last_failed_at),
        letter.source,
        letter.module,
        letter.record_id,
        _rule_action(letter),
        letter.error_code,
        str(letter.tries),
        _truncate(letter.message, MESSAGE_WIDTH),
    )


def format_table(letters: Sequence[DeadLetter], now: datetime) -> str:
    """One line per letter under a header, columns padded to their widest cell; a count underneath."""
    rows = [COLUMNS, *(_row(letter, now) for letter in letters)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    count = len(letters)
    return "\n".join([*lines, f"{count} dead letter{'' if count == 1 else 's'}"])


def _block(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return text.replace("\n", "\n" + " " * 14)


def _readable(value: Any) -> str:
    """A value of an effect on one line; epoch milliseconds (HubSpot's times) also as a UTC time."""
    if isinstance(value, str):
        moment = parse_datetime(value) if value.isdigit() else None
        suffix = f" ({moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC)" if moment is not None else ""
        return value + suffix
    return json.dumps(value, ensure_ascii=False)


def format_effect(effect: Any) -> list[str]:
    """What an action was writing, one field a line (`name  value`), ready to be entered by hand."""
    if not isinstance(effect, dict) or not effect:
        return [_readable(effect)]
    width = max(len(str(name)) for name in effect) + 2
    lines: list[str] = []
    for name, value in effect.items():
        first, *more = _readable(value).splitlines() or [""]
        lines.append(f"{name!s:<{width}}{first}")
        lines.extend(" " * width + line for line in more)
    return lines


def _by_hand(letter: DeadLetter) -> list[tuple[str, str]]:
    """The effects the failed action had not written, for an operator who logs them by hand."""
    unwritten = letter.context.get("unwritten")
    if not isinstance(unwritten, list) or not unwritten:
        return []
    lines = [
        "what the action was writing when it failed; to log it by hand, enter this, then purge the letter.",
        "Prefer `crmflow dlq replay` once the cause is fixed: the action may have had more to write after this",
        "(e.g. further notes), and a replay writes all of it, and reports reschedules hidden before this one.",
    ]
    for number, effect in enumerate(unwritten):
        lines.extend(([""] if number else []) + ["  " + line for line in format_effect(effect)])
    return [("by hand", ("\n" + " " * 14).join(lines))]


def _replay_line(letter: DeadLetter) -> str:
    reason = unreplayable(letter)
    if reason is not None:
        return f"no: {reason}"
    kept = letter.action_replay
    if kept is None:
        return "yes"
    return f"yes: runs {kept.type} of rule {kept.rule} again, as it was then, on the change it failed on"


def format_letter(letter: DeadLetter, now: datetime) -> str:
    """Every field of one letter, one per line; what to log by hand; the event, context and so on as JSON."""
    fields = [
        ("id", letter.id),
        ("source", letter.source),
        ("module", letter.module),
        ("record", letter.record_id),
        ("rule", letter.rule or "-"),
        ("action", letter.action or "-"),
        ("error", f"{letter.error_code} ({letter.error_class})"),
        ("message", letter.message),
        ("tries", str(letter.tries)),
        ("first failed", f"{_when(letter.first_failed_at)} UTC ({age(now - letter.first_failed_at)} ago)"),
        ("last failed", f"{_when(letter.last_failed_at)} UTC ({age(now - letter.last_failed_at)} ago)"),
        ("replay", _replay_line(letter)),
        *_by_hand(letter),
        ("event", _block(letter.event)),
        ("context", _block(letter.context)),
    ]
    if letter.action_replay is not None:
        fields.append(("action replay", _block(letter.action_replay.model_dump(mode="json"))))
    if letter.ledger_keys:
        fields.append(("ledger", ", ".join(letter.ledger_keys)))
    return "\n".join(f"{name:<14}{value}" for name, value in fields)


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# --- Running against Redis -------------------------------------------------------------------------------


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"crmflow: {message}", err=True)
    sys.exit(code)


def _settings() -> DlqSettings:
    settings = click.get_current_context().find_object(DlqSettings)
    if settings is None:
        raise RuntimeError("the dlq commands run under the `crmflow dlq` group, which reads their settings")
    return settings


def _where(redis_url: str) -> str:
    """Host, port and database of a Redis URL, never its password."""
    parts = urlsplit(redis_url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path}" if parts.hostname else parts.path


async def _session(redis_url: str, work: Callable[[ArqRedis, DeadLetters], Awaitable[T]]) -> T:
    redis = connect_queue(redis_url)
    try:
        return await work(redis, DeadLetters(redis))
    finally:
        await redis.aclose()


def run(work: Callable[[ArqRedis, DeadLetters], Awaitable[T]]) -> T:
    """Run `work` on the configured Redis; exit 2 with one line if Redis fails."""
    redis_url = _settings().redis_url
    try:
        return asyncio.run(_session(redis_url, work))
    except (RedisError, OSError, QueueUnavailableError) as exc:
        _fail(f"Redis at {_where(redis_url)} failed: {type(exc).__name__}: {exc}", code=2)


def _now() -> datetime:
    return datetime.now(UTC)


# --- Commands --------------------------------------------------------------------------------------------


@click.command("list")
@_filter_options
@_json_option
def list_command(
    source: str | None,
    error_code: str | None,
    older_than: timedelta | None,
    newer_than: timedelta | None,
    as_json: bool,
) -> None:
    """List dead letters, oldest failure first."""
    now = _now()
    where = letter_filter(now, source, error_code, older_than, newer_than)
    letters = run(lambda _, store: store.find(where))
    if as_json:
        _dump([letter.model_dump(mode="json") for letter in letters])
    elif not letters:
        click.echo("no dead letters")
    else:
        click.echo(format_table(letters, now))


@click.command("show")
@click.argument("letter_id", metavar="ID")
@_json_option
def show_command(letter_id: str, as_json: bool) -> None:
    """Show every field of one dead letter."""
    letter = run(lambda _, store: store.get(letter_id))
    if letter is None:
        _fail(f"no dead letter {letter_id} (see `crmflow dlq list`)", code=1)
    if as_json:
        _dump(letter.model_dump(mode="json"))
    else:
        click.echo(format_letter(letter, _now()))


def _print_outcome(outcome: Outcome) -> None:
    if outcome.job_id is not None:
        click.echo(f"replayed {outcome.id} as job {outcome.job_id}")
    else:
        click.echo(f"skipped {outcome.id}: {outcome.reason}")


async def _chosen(store: DeadLetters, ids: Sequence[str], where: LetterFilter | None) -> list[DeadLetter | str]:
    """The letters to replay: the filter's, or each id's letter (the id itself when there is none)."""
    if where is not None:
        return list(await store.find(where))
    return [await store.get(letter_id) or letter_id for letter_id in ids]


async def _replay(
    redis: ArqRedis,
    store: DeadLetters,
    ids: Sequence[str],
    where: LetterFilter | None,
    report: Callable[[Outcome], None],
) -> None:
    stamp_ms = int(_now().timestamp() * 1000)  # one per command: a new job id for every letter replayed
    for item in await _chosen(store, ids, where):
        if isinstance(item, str):
            report(Outcome(item, reason="no such dead letter"))
        else:
            report(await replay_letter(redis, store, item, stamp_ms=stamp_ms))


def _check_replay_usage(ids: Sequence[str], replay_all: bool, filtered: bool) -> None:
    if not replay_all and not ids:
        raise click.UsageError("give dead letter IDs, or --all")
    if replay_all and ids:
        raise click.UsageError("give dead letter IDs or --all, not both")
    if filtered and not replay_all:
        raise click.UsageError("--source, --error, --older-than and --newer-than go with --all")


@click.command("replay")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "replay_all", is_flag=True, help="Replay every letter the filters select.")
@_filter_options
@_json_option
def replay_command(
    ids: tuple[str, ...],
    replay_all: bool,
    source: str | None,
    error_code: str | None,
    older_than: timedelta | None,
    newer_than: timedelta | None,
    as_json: bool,
) -> None:
    """Queue dead letters' events again, as the receiver does.

    Each replayed letter is removed; if its job fails again, the worker records a new one.
    """
    _check_replay_usage(ids, replay_all, any(v is not None for v in (source, error_code, older_than, newer_than)))
    where = letter_filter(_now(), source, error_code, older_than, newer_than) if replay_all else None
    outcomes: list[Outcome] = []

    def report(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if not as_json:
            _print_outcome(outcome)  # as it happens: if Redis fails half-way, what was done is on screen

    run(lambda redis, store: _replay(redis, store, ids, where, report))
    _summarise(outcomes, as_json)
    if ids and not any(o.job_id for o in outcomes):
        sys.exit(1)


def _summarise(outcomes: Sequence[Outcome], as_json: bool) -> None:
    replayed = [{"id": o.id, "job_id": o.job_id} for o in outcomes if o.job_id is not None]
    skipped = [{"id": o.id, "reason": o.reason} for o in outcomes if o.job_id is None]
    if as_json:
        _dump({"replayed": replayed, "skipped": skipped})
    elif not outcomes:
        click.echo("no dead letters")
    else:
        click.echo(f"replayed {len(replayed)}, skipped {len(skipped)}")


@click.command("purge")
@click.option(
    "--older-than",
    callback=duration,
    metavar="DURATION",
    required=True,
    help="Remove letters whose last failure is older.",
)
@click.option("--source", help="Only letters from this source (zoho, hubspot).")
@click.option("--error", "error_code", help="Only letters with this error code, e.g. NOT_ALLOWED.")
@_json_option
def purge_command(older_than: timedelta, source: str | None, error_code: str | None, as_json: bool) -> None:
    """Remove dead letters whose last failure is older than --older-than."""
    cutoff = _now() - older_than
    where = LetterFilter(source=source, error_code=error_code)
    count = run(lambda _, store: store.purge(cutoff, where))
    if as_json:
        _dump({"purged": count})
    else:
        click.echo(f"purged {count} dead letter{'' if count == 1 else 's'}")


COMMANDS: tuple[click.Command, ...] = (list_command, show_command, replay_command, purge_command)
