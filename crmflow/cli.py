"""The `crmflow` command: receiver, worker, console, status, sweep, rules, dlq, zoho, crm-calls, doctor; sandbox: more.

The only place crmflow's settings are read. The sandbox and demo commands live with the sandbox (sandbox/cli.py),
so that no product module imports it: the group imports them only when one of them is run or listed.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import uvicorn

from crmflow import events as events_cli
from crmflow.dlq import COMMANDS as DLQ_COMMANDS
from crmflow.dlq import DlqSettings, duration
from crmflow.doctor.command import doctor, startup_problems
from crmflow.doctor.offline import Role
from crmflow.logs import LogSettings
from crmflow.logs import configure as configure_logs
from crmflow.settings import SettingsError, load_settings

if TYPE_CHECKING:
    from workers.config import WorkerConfig
    from workers.field_lists import FieldLists
    from workers.rules.model import RuleSet

logger = logging.getLogger("crmflow")


def _configure_logging() -> None:
    try:
        settings = load_settings(LogSettings)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    configure_logs(settings.log_level, settings.log_format)


def _fail(title: str, message: str, code: int = 2) -> NoReturn:
    click.echo(f"crmflow: {title}", err=True)
    for line in message.splitlines():
        click.echo(f"  {line}", err=True)
    sys.exit(code)


# Commands defined outside crmflow, as "module:attribute"; imported only when asked for.
LAZY_COMMANDS = {
    "sandbox": "sandbox.cli:sandbox",
    "demo": "sandbox.cli:demo",
    # Container health checks (crmflow/health.py).
    "health": "crmflow.health:health",
    # What crmflow is doing now (crmflow/status.py).
    "status": "crmflow.status:status",
}


class LazyGroup(click.Group):
    """A group that imports some commands by dotted name only when they are asked for (click's LazyGroup pattern)."""

    def __init__(self, *args: Any, lazy_subcommands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_subcommands])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_subcommands:
            return _lazy_load(cmd_name, self.lazy_subcommands[cmd_name])
        return super().get_command(ctx, cmd_name)


def _lazy_load(name: str, target: str) -> click.Command:
    module_name, _, attribute = target.partition(":")
    try:
        command = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        return _unavailable(name, target, exc)
    if not isinstance(command, click.Command):
        raise TypeError(f"{target} is not a click command")
    return command


def _unavailable(name: str, target: str, error: Exception) -> click.Command:
    """A stand-in for a command that cannot be imported: listed as such; run, it fails with one line."""
    module_name = target.partition(":")[0]
    reason = " ".join(str(error).split())

    def fail() -> None:
        _fail(f"`crmflow {name}` is not available: {module_name} cannot be imported ({reason})", "")

    return click.Command(
        name,
        callback=fail,
        help=f"Not available: {module_name} cannot be imported.",
        # Whatever options follow, the one line above is the answer (even to --help).
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_COMMANDS)
@click.version_option(package_name="crmflow", prog_name="crmflow", message="%(prog)s %(version)s")
def main() -> None:
    """crmflow: CRM change notifications in, rules and actions out."""
    _configure_logging()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="RECEIVER_HOST")
@click.option("--port", default=8000, show_default=True, envvar="RECEIVER_PORT", type=int)
def receiver(host: str, port: int) -> None:
    """Run the webhook receiver (Starlette on uvicorn)."""
    from receiver.app import create_app
    from receiver.config import ReceiverConfig
    from receiver.server import raise_file_limit, server_options, settle_garbage_collector

    try:
        config = load_settings(ReceiverConfig)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    _startup_check("receiver")
    routes = ", ".join(f"{source} (POST /webhooks/{source})" for source in config.sources)
    logger.info("receiver: sources active: %s; queue at %s", routes, _redacted(config.redis_url))
    try:
        raise_file_limit(config)
    except ValueError as exc:
        _fail("invalid configuration", str(exc))
    # The connection layer (header deadline, socket cap, JSON refusals) and its limits: receiver/server.py.
    # log_config=None: uvicorn's own lines go through crmflow's formatter too (one escaped line per record).
    app = create_app(config)
    settle_garbage_collector()  # nothing to collect on the request path: keep the collector off it
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, **server_options(config))


@main.command()
def worker() -> None:
    """Run an arq worker: fetch, diff, rules, actions."""
    from workers.config import WorkerConfig
    from workers.main import notify_secrets_environ, run_forever
    from workers.notify.notifier import secret_envs, secret_problems
    from workers.rules.load import RuleFileError, load_rules

    try:
        config = load_settings(WorkerConfig)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    _startup_check("worker")
    try:
        rules = load_rules(config.rules_path)
    except RuleFileError:
        # Not with the built-in fields alone: with the CRMs' own field lists, then (custom fields).
        rules = _rules_with_field_lists(config)
    # Notify actions sign with the secrets their rules name: one missing would dead-letter every delivery.
    secrets = secret_problems(secret_envs(rules), notify_secrets_environ())
    if secrets:
        _fail(f"notify secrets named by the rules in {config.rules_path}", "\n".join(secrets))
    apis = {"zoho": config.zoho_api_domain, "hubspot": config.hubspot_api_base}
    active = ", ".join(f"{source} ({apis[source]})" for source in config.sources)
    logger.info("worker: sources active: %s; %d rules from %s", active, len(rules.rules), config.rules_path)
    if config.metrics_port:
        from workers.metrics_server import MetricsPortError, serve_metrics

        try:
            serve_metrics(config.metrics_port, config.redis_url)
        except MetricsPortError as exc:
            _fail("cannot serve metrics", str(exc))
    run_forever(config, rules)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen here; keep it off the webhooks' network.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def console(host: str, port: int) -> None:
    """Run the web console: events, dead letters and health, behind CONSOLE_TOKEN (a process of its own)."""
    from console.app import create_app
    from console.config import ConsoleConfig

    try:
        config = load_settings(ConsoleConfig)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    where = _redacted(config.redis_url)
    logger.info("console: http://%s:%d/ (log in with CONSOLE_TOKEN); Redis at %s", host, port, where)
    # log_config=None: uvicorn's lines go through crmflow's formatter; no access log (its URLs carry record ids).
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", log_config=None, access_log=False)


def _startup_check(role: Role) -> None:
    """The doctor's offline checks for this role (`crmflow doctor` runs them all): warnings logged, failures stop."""
    problems = startup_problems(role)
    if problems:
        _fail("invalid configuration (`crmflow doctor` checks it all)", "\n".join(problems))


main.add_command(doctor)


@main.group()
def rules() -> None:
    """Rule files."""


@rules.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--online",
    is_flag=True,
    help="Check fields against the CRMs' own field lists too (custom fields): from Redis, else from the CRM, "
    "with the worker's settings.",
)
@click.option("--refresh", is_flag=True, help="With --online: read the field lists from the CRMs, not from Redis.")
def rules_check(path: Path, online: bool, refresh: bool) -> None:
    """Validate a rule file (or a directory of them); exit 1 with one line per problem.

    Offline, rules may name the built-in fields of each module; --online adds the fields each CRM reports. A field
    list that cannot be read (the CRM not configured, unreachable or refusing) is said on stderr; it fails the
    check (exit 2, with the reason) only when the rules name a field it might have held."""
    from workers.rules.check import NO_EXTRA_FIELDS
    from workers.rules.load import RuleFileError, load_rules

    if refresh and not online:
        _fail("--refresh goes with --online", "it reads the CRMs' field lists afresh")
    extra_fields, read, unread = NO_EXTRA_FIELDS, "", []
    if online:
        lists = _rules_field_lists(path, refresh=refresh)
        extra_fields = lists.extra_fields()
        described = [
            f"{fl.source}/{fl.module} {len(fl.fields)} fields, {'cached' if fl.cached else 'from the CRM'}"
            for fl in lists.lists
        ]
        unread = [str(missing) for missing in lists.unavailable]
        described += [f"{missing.source}/{missing.module} not read" for missing in lists.unavailable]
        read = f" (field lists: {'; '.join(described) or 'none needed'})"
    try:
        ruleset = load_rules(path, extra_fields=extra_fields)
    except RuleFileError as exc:
        if unread:
            message = "\n".join([str(exc), "a CRM field list could not be read, so only built-in fields were known:"])
            _fail(f"{path}: cannot check online", "\n".join([message, *unread]))
        _fail(f"{path}: invalid rules", str(exc), code=1)
    for line in unread:
        click.echo(f"warning: a CRM field list could not be read (the rules need none of it): {line}", err=True)
    count = len(ruleset.rules)
    click.echo(f"{path}: ok, {count} rule{'' if count == 1 else 's'}{read}")


def _rules_field_lists(path: Path, *, refresh: bool) -> FieldLists:
    """The field lists of every (source, module) the rules name that could be read: the worker's settings."""
    import asyncio

    from workers.config import WorkerConfig
    from workers.field_lists import configured_field_lists
    from workers.rules.load import rule_targets

    try:
        config = load_settings(WorkerConfig)
    except SettingsError as exc:
        _fail("cannot check online: invalid configuration (the worker's settings)", str(exc))
    return asyncio.run(configured_field_lists(config, rule_targets(path), now=datetime.now(UTC), refresh=refresh))


def _rules_with_field_lists(config: WorkerConfig) -> RuleSet:
    """The rules checked against the CRMs' field lists (read within a bound, at worker start-up), or stop.

    A list that cannot be had leaves its module's built-in fields alone, with a warning; the worker then stops
    only when a rule names a field outside them, and says which list could not be read and why."""
    import asyncio

    from workers.field_lists import configured_field_lists
    from workers.rules.load import RuleFileError, load_rules, rule_targets

    lists = asyncio.run(configured_field_lists(config, rule_targets(config.rules_path), now=datetime.now(UTC)))
    for fl in lists.lists:
        origin = "cached" if fl.cached else "read from the CRM"
        logger.info("worker: field list of %s/%s: %d fields (%s)", fl.source, fl.module, len(fl.fields), origin)
    for missing in lists.unavailable:
        logger.warning(
            "worker: the CRM field list of %s/%s could not be read (%s); rules may name only its built-in fields",
            missing.source,
            missing.module,
            missing.reason,
        )
    try:
        return load_rules(config.rules_path, extra_fields=lists.extra_fields())
    except RuleFileError as exc:
        unread = [
            f"(the CRM field list of {u.source}/{u.module} could not be read, so only its built-in fields are "
            f"known: {u.reason})"
            for u in lists.unavailable
        ]
        _fail(f"invalid rules in {config.rules_path}", "\n".join([str(exc), *unread]))


@main.command()
@click.option("--source", "source_name", type=click.Choice(["zoho", "hubspot"]), help="Sweep only this CRM.")
@click.option("--since", help="List changes from this time (ISO 8601 with an offset) instead of the cursor.")
def sweep(source_name: str | None, since: str | None) -> None:
    """Queue every appointment modified since the last sweep (or --since), as notifications are queued."""
    import asyncio
    from datetime import UTC, datetime

    from crmflow.sweep import Progress, parse_since, report, run_sweeps
    from workers.config import WorkerConfig

    try:
        config = load_settings(WorkerConfig)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    now = datetime.now(UTC)
    try:
        start = parse_since(since, now) if since is not None else None
    except ValueError as exc:
        _fail("invalid --since", str(exc))
    names = [source_name] if source_name is not None else list(config.sources)
    if source_name is not None and source_name not in config.sources:
        _fail(f"{source_name} is not configured", "set its credentials (see docs/configuration.md) to sweep it")
    if not names:
        _fail("no CRM is configured", "set Zoho's or HubSpot's credentials (see docs/configuration.md)")
    from redis.exceptions import RedisError

    try:
        results = asyncio.run(run_sweeps(config, names, since=start, now=now, progress=Progress(sys.stderr)))
    except (RedisError, OSError) as exc:
        _fail(f"Redis at {_redacted(config.redis_url)} is unavailable", f"{type(exc).__name__}: {exc}", code=1)
    sys.exit(report(results))


@main.group()
@click.pass_context
def dlq(ctx: click.Context) -> None:
    """Dead letters: work that failed for good. List, show, replay and purge them."""
    try:
        ctx.obj = load_settings(DlqSettings)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))


for _command in DLQ_COMMANDS:
    dlq.add_command(_command)


@main.group(invoke_without_command=True)
@click.option("--record", "record_id", metavar="ID", help="Only entries about this record id.")
@click.option("--source", help="Only entries from this source (zoho, hubspot).")
@click.option("--outcome", type=events_cli.OUTCOME_CHOICE, help="Only entries with this outcome.")
@click.option("--newer-than", callback=duration, metavar="DURATION", help="Only entries written since, e.g. 2h.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="Entries at most.")
@click.option("--before", metavar="ID", help="Only entries older than this one (the cursor a page ends with).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry and line.")
@click.pass_context
def events(
    ctx: click.Context,
    record_id: str | None,
    source: str | None,
    outcome: str | None,
    newer_than: timedelta | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """The event log: one entry per change processed, newest first (`crmflow events show ID`: one in full)."""
    try:
        ctx.obj = load_settings(DlqSettings)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    if ctx.invoked_subcommand is not None:
        return
    where = events_cli.event_filter(datetime.now(UTC), source, record_id, outcome, newer_than)
    try:
        text = events_cli.list_text(
            ctx.obj.redis_url, _redacted(ctx.obj.redis_url), where, limit=limit, before=before, as_json=as_json
        )
    except events_cli.EventsError as exc:
        _fail(str(exc), "", code=exc.code)
    if text:
        click.echo(text)


@events.command("show")
@click.argument("event_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="The entry as JSON.")
@click.pass_obj
def events_show(settings: DlqSettings, event_id: str, as_json: bool) -> None:
    """Show one entry of the event log in full."""
    try:
        click.echo(events_cli.show_text(settings.redis_url, _redacted(settings.redis_url), event_id, as_json=as_json))
    except events_cli.EventsError as exc:
        _fail(str(exc), "", code=exc.code)


@main.group()
@click.pass_context
def zoho(ctx: click.Context) -> None:
    """Zoho watch channels: subscribe, list, renew and unsubscribe them (workers also keep them by themselves)."""
    from crmflow.zoho_cli import ZohoSettings

    try:
        ctx.obj = load_settings(ZohoSettings)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))


def _add_zoho_commands() -> None:
    from crmflow.zoho_cli import COMMANDS

    for command in COMMANDS:
        zoho.add_command(command)


_add_zoho_commands()


@main.command("crm-calls")
@click.option("--days", default=1, show_default=True, type=click.IntRange(1, 35), help="Today and the days before.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per day and source.")
def crm_calls(days: int, as_json: bool) -> None:
    """CRM API calls per UTC day and kind (read, write, token, search, watch), 429s and coalesced notifications."""
    from redis.exceptions import RedisError

    from crmflow.crm_calls import report

    try:
        settings = load_settings(DlqSettings)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    try:
        click.echo(report(settings.redis_url, days=days, as_json=as_json))
    except (RedisError, OSError) as exc:
        _fail(f"Redis at {_redacted(settings.redis_url)} failed", f"{type(exc).__name__}: {exc}")


def _redacted(url: str) -> str:
    """A Redis URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
