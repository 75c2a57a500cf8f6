"""Online webhook checks: webhooks the receiver refused for a wrong secret or token, and none accepted since.

A wrong HUBSPOT_CLIENT_SECRET (or ZOHO_NOTIFY_TOKEN, ZOHO_CHANNEL_IDS) cannot be seen through the CRMs' APIs:
only the webhooks show it, refused with 401. The receiver records each refusal per source and setting
(receiver/rejections.py, from the 401 answer only); the enqueue script records when it last accepted a
notification of the source (workers/keys.py `last_notification`; absent means "not known": an older crmflow,
or nothing accepted within that key's lifetime). A mismatch with nothing accepted since fails; with an
acceptance since, it is someone else's request; with no acceptance known, a warning. Reads in `read_state`,
the rest pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from crmflow.doctor.findings import Finding, fail, ok, warn
from workers import keys

# The settings a refusal of each source can point at, with what the sender sent and how to fix it.
SETTINGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "hubspot": (
        (
            "HUBSPOT_CLIENT_SECRET",
            "with a signature that does not match",
            "copy the app's client secret (the app's Auth tab) into HUBSPOT_CLIENT_SECRET for the receiver; if it "
            "is right, set PUBLIC_BASE_URL to exactly the base of the target URL HubSpot calls (it is signed too)",
        ),
    ),
    "zoho": (
        (
            "ZOHO_NOTIFY_TOKEN",
            "with a token that is not ZOHO_NOTIFY_TOKEN",
            "run `crmflow zoho renew` (the channels then carry ZOHO_NOTIFY_TOKEN), or set ZOHO_NOTIFY_TOKEN to the "
            "channels' token",
        ),
        (
            "ZOHO_CHANNEL_IDS",
            "from a channel not in ZOHO_CHANNEL_IDS",
            "add the channel to ZOHO_CHANNEL_IDS, or disable it in Zoho",
        ),
    ),
}
LABELS = {"hubspot": "HubSpot", "zoho": "Zoho"}


@dataclass(frozen=True)
class WebhookState:
    """What Redis holds of one source's webhooks: the refusal record (field -> value) and the last acceptance."""

    refusals: Mapping[str, str]
    accepted_ms: int | None


async def read_state(redis: Redis, source: str) -> WebhookState:
    raw = await redis.hgetall(keys.webhook_rejections(source))  # type: ignore[misc]
    accepted = await redis.get(keys.last_notification(source))
    refusals = {key.decode(): value.decode() for key, value in raw.items()}
    return WebhookState(refusals, int(accepted) if accepted is not None else None)


def _ago(ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - ms) // 1000)
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago" if seconds < 172_800 else f"{seconds // 86_400} days ago"


def webhook_findings(source: str, state: WebhookState, now_ms: int) -> list[Finding]:
    """One finding per setting a refusal of `source` can point at."""
    check = f"{source} webhooks"
    label = LABELS[source]
    days = keys.REJECTIONS_TTL_S // 86_400
    found = []
    for setting, sent, fix in SETTINGS[source]:
        last = state.refusals.get(f"{setting}:last_ms")
        if last is None:
            found.append(ok(check, f"none refused {sent} in the last {days} days", setting=setting))
            continue
        last_ms, count = int(last), state.refusals.get(f"{setting}:count", "?")
        refused = f"the receiver refused {count} {label} webhook(s) {sent} (the last {_ago(last_ms, now_ms)})"
        accepted = state.accepted_ms
        if accepted is None:
            message = f"{refused}; whether any was accepted since is not known"
            found.append(warn(check, message, setting=setting, fix=f"if no {label} webhook gets through, {fix}"))
        elif accepted <= last_ms:
            message = f"{refused} and none accepted since (the last {_ago(accepted, now_ms)})"
            found.append(fail(check, message, setting=setting, fix=fix))
        else:
            message = f"{refused}, but one was accepted since: not this setting, another sender"
            found.append(ok(check, message, setting=setting))
    return found
