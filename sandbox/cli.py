"""The `crmflow sandbox` and `crmflow demo` commands; crmflow's CLI loads them by name only when one is run."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

import click
import uvicorn

# The logger of crmflow's other commands, so that these log under the same name.
logger = logging.getLogger("crmflow")


def _fail(title: str, message: str, code: int = 2) -> NoReturn:
    """Stop with crmflow's error format: `crmflow: <title>`, then the message indented (as crmflow.cli does)."""
    click.echo(f"crmflow: {title}", err=True)
    for line in message.splitlines():
        click.echo(f"  {line}", err=True)
    sys.exit(code)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="SANDBOX_HOST")
@click.option("--port", default=8001, show_default=True, envvar="SANDBOX_PORT", type=int)
@click.option("--notify-url", envvar="SANDBOX_NOTIFY_URL", help="Where to POST Zoho notifications (the receiver).")
@click.option("--notify-token", envvar="SANDBOX_NOTIFY_TOKEN", default="sandbox-notify-token", show_default=True)
@click.option("--channel-id", envvar="SANDBOX_CHANNEL_ID", default="1000000068001", show_default=True)
@click.option("--auto-history/--no-auto-history", default=False, help="Write history rows itself, as Zoho may.")
@click.option(
    "--hubspot-webhook-url", envvar="SANDBOX_HUBSPOT_WEBHOOK_URL", help="Where to POST signed HubSpot webhook batches."
)
@click.option(
    "--zoho-max-concurrency",
    envvar="SANDBOX_ZOHO_MAX_CONCURRENCY",
    type=click.IntRange(min=1),
    help="Answer 429 TOO_MANY_REQUESTS beyond this many Zoho API calls at once (default: no cap).",
)
@click.option(
    "--hubspot-requests-per-10s",
    envvar="SANDBOX_HUBSPOT_REQUESTS_PER_10S",
    type=click.IntRange(min=1),
    default=190,
    show_default=True,
    help="HubSpot's rolling 10-second window (429 TEN_SECONDLY_ROLLING beyond it).",
)
@click.option(
    "--hubspot-search-per-s",
    envvar="SANDBOX_HUBSPOT_SEARCH_PER_S",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="HubSpot search requests per rolling second (429 with the secondly body beyond it).",
)
@click.option("--zoho-client-id", envvar="SANDBOX_ZOHO_CLIENT_ID", default="sandbox-client-id", show_default=True)
@click.option(
    "--zoho-client-secret", envvar="SANDBOX_ZOHO_CLIENT_SECRET", default="sandbox-client-secret", show_default=True
)
@click.option(
    "--zoho-refresh-token", envvar="SANDBOX_ZOHO_REFRESH_TOKEN", default="sandbox-refresh-token", show_default=True
)
@click.option(
    "--zoho-scopes",
    envvar="SANDBOX_ZOHO_SCOPES",
    help="Scopes the refresh token was granted (comma- or space-separated); other Zoho calls answer 401 "
    "OAUTH_SCOPE_MISMATCH. Default: every scope.",
)
@click.option(
    "--hubspot-access-token", envvar="SANDBOX_HUBSPOT_ACCESS_TOKEN", default="sandbox-hubspot-token", show_default=True
)
@click.option(
    "--hubspot-client-secret",
    envvar="SANDBOX_HUBSPOT_CLIENT_SECRET",
    default="sandbox-hubspot-client-secret",
    show_default=True,
    help="The secret that signs HubSpot webhook batches.",
)
@click.option(
    "--hubspot-scopes",
    envvar="SANDBOX_HUBSPOT_SCOPES",
    help="Scopes the HubSpot token was granted (space- or comma-separated); other HubSpot calls answer 403 "
    "MISSING_SCOPES. Default: every scope.",
)
@click.option(
    "--custom-field",
    "custom_fields",
    multiple=True,
    envvar="SANDBOX_CUSTOM_FIELDS",
    metavar="SOURCE:MODULE:NAME[:TYPE]",
    help="A custom field the CRM's field list reports (repeatable), e.g. zoho:Appointments__s:Visit_Priority or "
    "hubspot:appointments:visit_priority:enumeration; SANDBOX_CUSTOM_FIELDS takes them space-separated.",
)
def sandbox(
    host: str,
    port: int,
    notify_url: str | None,
    notify_token: str,
    channel_id: str,
    auto_history: bool,
    hubspot_webhook_url: str | None,
    zoho_max_concurrency: int | None,
    hubspot_requests_per_10s: int,
    hubspot_search_per_s: int,
    zoho_client_id: str,
    zoho_client_secret: str,
    zoho_refresh_token: str,
    zoho_scopes: str | None,
    hubspot_access_token: str,
    hubspot_client_secret: str,
    hubspot_scopes: str | None,
    custom_fields: tuple[str, ...],
) -> None:
    """Run the local Zoho CRM and HubSpot emulator that tests and the demo use."""
    from sandbox.app import create_app
    from sandbox.config import SandboxConfig
    from sandbox.hubspot.scopes import parse_scopes as hubspot_scopes_of
    from sandbox.zoho.scopes import parse_scopes as zoho_scopes_of

    try:
        config = SandboxConfig(
            client_id=zoho_client_id,
            client_secret=zoho_client_secret,
            refresh_token=zoho_refresh_token,
            zoho_scopes=None if zoho_scopes is None else zoho_scopes_of(zoho_scopes),
            hubspot_access_token=hubspot_access_token,
            hubspot_client_secret=hubspot_client_secret,
            hubspot_scopes=None if hubspot_scopes is None else hubspot_scopes_of(hubspot_scopes),
            notify_url=notify_url,
            notify_token=notify_token,
            channel_id=channel_id,
            auto_history=auto_history,
            hubspot_webhook_url=hubspot_webhook_url,
            zoho_max_concurrency=zoho_max_concurrency,
            hubspot_rate_limit_max=hubspot_requests_per_10s,
            hubspot_search_per_s=hubspot_search_per_s,
            custom_fields=custom_fields,
        )
    except ValueError as exc:
        _fail("invalid sandbox configuration", str(exc))
    logger.info(
        "sandbox: Zoho and HubSpot at http://%s:%d; Zoho notifications to %s, HubSpot webhooks to %s",
        host,
        port,
        notify_url,
        hubspot_webhook_url,
    )
    uvicorn.run(create_app(config), host=host, port=port, log_level="info", server_header=False)


@click.command()
def demo() -> None:
    """Run receiver, worker and sandbox on loopback, reschedule an appointment, show what happened."""
    from sandbox.demo.run import run_demo
    from workers.rules.load import RuleFileError

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    rules_path = os.environ.get("RULES_PATH", "rules/default.yaml")
    try:
        asyncio.run(_stoppable(run_demo(redis_url=redis_url, rules_path=rules_path)))
    except RuleFileError as exc:
        _fail(f"invalid rules in {rules_path}", str(exc))
    except (RuntimeError, TimeoutError) as exc:
        _fail("the demo failed", str(exc), code=1)
    except KeyboardInterrupt:
        _fail("the demo was interrupted (Ctrl-C)", "", code=130)
    except asyncio.CancelledError:
        _fail("the demo was stopped (SIGTERM)", "", code=143)


async def _stoppable(run: Coroutine[Any, Any, None]) -> None:
    """Run the demo; SIGTERM cancels it as Ctrl-C does (asyncio.run's own handling), so it cleans up either way."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await run
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
