"""The Zoho watch channels as Zoho lists them, against ZOHO_CHANNEL_IDS: each exists, calls
PUBLIC_BASE_URL/webhooks/zoho with ZOHO_NOTIFY_TOKEN and is not about to expire. Pure.

Reuses the workers' upkeep plan (workers/channels.py): what the plan would enable or renew is a problem now.
A channel calling another URL names PUBLIC_BASE_URL, one with another token ZOHO_NOTIFY_TOKEN; any other
difference names no setting (only `crmflow zoho renew`).
With channel upkeep on the workers fix it at their next check, so it is a warning; without, a failure
(a missing channel, or one calling elsewhere, means Zoho's notifications do not arrive).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from crmflow.doctor.findings import Finding, fail, ok, warn
from workers.channels import RENEW_WITHIN, Wanted, plan
from workers.crm.zoho_watch_models import WatchChannel


def channel_findings(wanted: Wanted, have: Mapping[str, WatchChannel], now: datetime, *, upkeep: bool) -> list[Finding]:
    """One finding per channel in ZOHO_CHANNEL_IDS."""
    found = []
    later = " (the workers keeping channels will do so at their next check)" if upkeep else ""
    for step in plan(wanted, have, now):
        check = f"zoho channel {step.channel_id}"
        if step.action == "ok":
            found.append(ok(check, f"calls PUBLIC_BASE_URL/webhooks/zoho with ZOHO_NOTIFY_TOKEN; {step.reason}"))
        elif step.action == "enable":
            message = "Zoho does not have it (never enabled, expired or disabled): no Zoho notification arrives"
            fix = f"run `crmflow zoho subscribe`{later}"
            found.append((warn if upkeep else fail)(check, message, setting="ZOHO_CHANNEL_IDS", fix=fix))
        elif step.reason.startswith("expires in"):
            if upkeep:
                found.append(ok(check, f"{step.reason}; the workers renew it at their next check"))
            else:
                message = f"{step.reason} (renewal due within {RENEW_WITHIN.days} days) and no worker renews it"
                found.append(warn(check, message, setting="ZOHO_CHANNEL_IDS", fix="run `crmflow zoho renew`"))
        else:
            message = f"differs from what crmflow wants: {step.reason}"
            fix = f"run `crmflow zoho renew`{later}"
            setting = ", ".join(_settings_at_fault(wanted, have[step.channel_id]))
            found.append((warn if upkeep else fail)(check, message, setting=setting, fix=fix))
    return found


def _settings_at_fault(wanted: Wanted, channel: WatchChannel) -> list[str]:
    """The settings a channel's differences point at: its notify URL (PUBLIC_BASE_URL) and its token
    (ZOHO_NOTIFY_TOKEN). Other differences (events, notify_on_related_action, ...) are no setting's fault:
    `crmflow zoho renew` makes the channel what crmflow wants."""
    spec = wanted.spec(channel.channel_id)
    named = ["PUBLIC_BASE_URL"] if channel.notify_url != spec.notify_url else []
    if channel.token is None or channel.token.get_secret_value() != spec.token.get_secret_value():
        named.append("ZOHO_NOTIFY_TOKEN")
    return named
