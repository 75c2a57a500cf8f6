"""The `crmflow` command: receiver, worker, sandbox, demo, rules check and dlq. The only place settings are read."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

import click
import uvicorn

from crmflow.dlq import COMMANDS as DLQ_COMMANDS
from crmflow.dlq import DlqSettings
from crmflow.settings import SettingsError, load_settings

logger = logging.getLogger("crmflow")


def _configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # httpx logs every request URL at INFO; keep that for debugging only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


def _fail(title: str, message: str, code: int = 2) -> NoReturn:
    click.echo(f"crmflow: {title}", err=True)
    for line in message.splitlines():
        click.echo(f"  {line}", err=True)
    sys.exit(code)


@click.group()
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

    try:
        config = load_settings(ReceiverConfig)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    routes = ", ".join(f"{source} (POST /webhooks/{source})" for source in config.sources)
    logger.info("receiver: sources active: %s; queue at %s", routes, _redacted(config.redis_url))
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        # h11 caps a request head at 16 KiB (httptools, if installed, would not); idle keep-alive connections
        # close after 5 s; at most 200 connections at once bounds memory to about 200 x the body cap (more get
        # a 503, which senders retry); a stop waits 10 s for answers in flight.
        http="h11",
        h11_max_incomplete_event_size=16 * 1024,
        timeout_keep_alive=5,
        limit_concurrency=200,
        timeout_graceful_shutdown=10,
    )


@main.command()
def worker() -> None:
    """Run an arq worker: fetch, diff, rules, actions."""
    from workers.config import WorkerConfig
    from workers.main import run_forever
    from workers.rules.load import RuleFileError, load_rules

    try:
        config = load_settings(WorkerConfig)
    except SettingsError as exc:
        _fail("invalid configuration", str(exc))
    try:
        rules = load_rules(config.rules_path)
    except RuleFileError as exc:
        _fail(f"invalid rules in {config.rules_path}", str(exc))
    apis = {"zoho": config.zoho_api_domain, "hubspot": config.hubspot_api_base}
    active = ", ".join(f"{source} ({apis[source]})" for source in config.sources)
    logger.info("worker: sources active: %s; %d rules from %s", active, len(rules.rules), config.rules_path)
    run_forever(config, rules)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="SANDBOX_HOST")
@click.option("--port", default=8001, show_default=True, envvar="SANDBOX_PORT", type=int)
@click.option("--notify-url", envvar="SANDBOX_NOTIFY_URL", help="Where to POST Zoho notifications (the receiver).")
@click.option("--notify-token", envvar="SANDBOX_NOTIFY_TOKEN", default="sandbox-notify-token", show_default=True)
@click.option("--channel-id", envvar="SANDBOX_CHANNEL_ID", default="1000000068001", show_default=True)
@click.option("--auto-history/--no-auto-history", default=False, help="Write history rows itself, as Zoho may.")
@click.option(
    "--hubspot-webhook-url", envvar="SANDBOX_HUBSPOT_WEBHOOK_URL", help="Where to POST signed HubSpot webhook batches."
)
def sandbox(
    host: str,
    port: int,
    notify_url: str | None,
    notify_token: str,
    channel_id: str,
    auto_history: bool,
    hubspot_webhook_url: str | None,
) -> None:
    """Run the local Zoho CRM and HubSpot emulator that tests and the demo use."""
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig

    config = SandboxConfig(
        notify_url=notify_url,
        notify_token=notify_token,
        channel_id=channel_id,
        auto_history=auto_history,
        hubspot_webhook_url=hubspot_webhook_url,
    )
    logger.info(
        "sandbox: Zoho and HubSpot at http://%s:%d; Zoho notifications to %s, HubSpot webhooks to %s",
        host,
        port,
        notify_url,
        hubspot_webhook_url,
    )
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", server_header=False)


@main.command()
def demo() -> None:
    """Run receiver, worker and sandbox on loopback, reschedule an appointment, show what happened."""
    from crmflow.demo import run_demo

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    rules_path = os.environ.get("RULES_PATH", "rules/default.yaml")
    try:
        asyncio.run(run_demo(redis_url=redis_url, rules_path=rules_path))
    except (RuntimeError, TimeoutError) as exc:
        _fail("the demo failed", str(exc), code=1)


@main.group()
def rules() -> None:
    """Rule files."""


@rules.command("check")
@click.argument("path", type=click.Path(path_type=Path))
def rules_check(path: Path) -> None:
    """Validate a rule file (or a directory of them); exit 1 with one line per problem."""
    from workers.rules.load import RuleFileError, load_rules

    try:
        ruleset = load_rules(path)
    except RuleFileError as exc:
        _fail(f"{path}: invalid rules", str(exc), code=1)
    count = len(ruleset.rules)
    click.echo(f"{path}: ok, {count} rule{'' if count == 1 else 's'}")


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


def _redacted(url: str) -> str:
    """A Redis URL without its password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
