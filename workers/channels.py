"""Zoho channel upkeep, the plan: which wanted channel to enable, renew or leave, and whether Zoho kept its word. Pure.

A Zoho watch channel lives at most a week; Zoho deletes it once it has expired, and a missing or too distant
`channel_expiry` silently gives one hour (docs/zoho-crm.md, "Notifications (watch channels)"). So crmflow asks
for an expiry just under a week ahead (a margin against clock skew: more than a week by Zoho's clock would
give the one-hour fallback), renews when two days or less are left, and checks the expiry Zoho granted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from workers.crm.zoho_watch_models import ChannelSpec, Granted, WatchChannel

MODULE = "Appointments__s"
# Create, edit and delete of appointments; a channel made with `Appointments__s.all` (as the manual set-up
# once did) covers the same and is left as it is until its renewal, which sends these.
EVENTS = (f"{MODULE}.create", f"{MODULE}.edit", f"{MODULE}.delete")
NOTIFY_PATH = "/webhooks/zoho"
# Asked expiry: a week less an hour, so that a clock up to an hour ahead of Zoho's stays within the week.
EXPIRY_AHEAD = timedelta(days=7) - timedelta(hours=1)
# A channel with this little left is renewed (the worker checks hourly by default, so days of slack).
RENEW_WITHIN = timedelta(days=2)
# Zoho answers with seconds precision; a granted expiry this close to the one asked is the one asked.
GRANT_TOLERANCE = timedelta(seconds=60)

Action = Literal["enable", "renew", "ok"]


def coverage(events: Iterable[str]) -> frozenset[str]:
    """The (module, verb) pairs events subscribe to: `X.all` is the same as X.create, X.edit and X.delete."""
    pairs: set[str] = set()
    for event in events:
        module, _, verb = event.partition(".")
        pairs |= {f"{module}.{v}" for v in ("create", "edit", "delete")} if verb == "all" else {event}
    return frozenset(pairs)


@dataclass(frozen=True)
class Wanted:
    """The channels crmflow keeps: ZOHO_CHANNEL_IDS, calling PUBLIC_BASE_URL/webhooks/zoho with ZOHO_NOTIFY_TOKEN."""

    channel_ids: tuple[str, ...]
    public_base_url: str
    token: SecretStr
    events: tuple[str, ...] = EVENTS

    @property
    def notify_url(self) -> str:
        return self.public_base_url.rstrip("/") + NOTIFY_PATH

    def spec(self, channel_id: str) -> ChannelSpec:
        return ChannelSpec(channel_id=channel_id, events=self.events, notify_url=self.notify_url, token=self.token)

    def specs(self) -> list[ChannelSpec]:
        return [self.spec(channel_id) for channel_id in self.channel_ids]


@dataclass(frozen=True)
class Step:
    """What to do about one wanted channel, and why."""

    channel_id: str
    action: Action
    reason: str


def asked_expiry(now: datetime) -> datetime:
    """The expiry to ask for: just under a week ahead, to the second (Zoho refuses milliseconds)."""
    return (now + EXPIRY_AHEAD).replace(microsecond=0)


def time_left(expires_at: datetime | None, now: datetime) -> str:
    """'5d 3h', '2h 10m', '45s' or 'expired' (unknown: '?')."""
    if expires_at is None:
        return "?"
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def differences(spec: ChannelSpec, have: WatchChannel) -> list[str]:
    """What differs between the channel Zoho has and the one wanted (the token by comparison only, never shown)."""
    found: list[str] = []
    if coverage(have.events) != coverage(spec.events):
        found.append(f"events are {', '.join(have.events) or 'none'} (wanted {', '.join(spec.events)})")
    if have.notify_url != spec.notify_url:
        found.append(f"notify_url is {shown_url(have.notify_url)} (wanted {shown_url(spec.notify_url)})")
    if have.token is None:
        found.append("it has no token")
    elif have.token.get_secret_value() != spec.token.get_secret_value():
        found.append("its token is not ZOHO_NOTIFY_TOKEN")
    if have.return_affected_field_values is not spec.return_affected_field_values:
        found.append(f"return_affected_field_values is {have.return_affected_field_values}")
    if have.notify_on_related_action is not spec.notify_on_related_action:
        found.append(f"notify_on_related_action is {have.notify_on_related_action}")
    return found


def plan(wanted: Wanted, have: Mapping[str, WatchChannel], now: datetime, *, renew_all: bool = False) -> list[Step]:
    """Per wanted channel: enable when Zoho lacks it (or it has expired), renew when it expires within two days
    or differs from what is wanted (or `renew_all`), else ok."""
    steps: list[Step] = []
    for channel_id in wanted.channel_ids:
        channel = have.get(channel_id)
        if channel is None or (channel.expires_at is not None and channel.expires_at <= now):
            steps.append(Step(channel_id, "enable", "Zoho does not have it"))
            continue
        left = time_left(channel.expires_at, now)
        changed = differences(wanted.spec(channel_id), channel)
        if changed:
            steps.append(Step(channel_id, "renew", "; ".join(changed)))
        elif channel.expires_at is None or channel.expires_at - now <= RENEW_WITHIN:
            steps.append(Step(channel_id, "renew", f"expires in {left}"))
        elif renew_all:
            steps.append(Step(channel_id, "renew", f"asked to ({left} left)"))
        else:
            steps.append(Step(channel_id, "ok", f"{left} left"))
    return steps


def grant_problem(asked: datetime, granted: Granted) -> str | None:
    """Why the expiry Zoho granted is not the one asked, or None when it is (within GRANT_TOLERANCE).

    Zoho does not refuse an expiry it will not honour: it silently grants one hour instead.
    """
    if abs(granted.expires_at - asked) <= GRANT_TOLERANCE:
        return None
    return (
        f"Zoho granted an expiry of {granted.expires_at.isoformat()} instead of the {asked.isoformat()} asked "
        "(Zoho's silent one-hour fallback: the expiry was more than a week ahead by Zoho's clock, or unreadable "
        "to it; check this machine's clock)"
    )


@dataclass(frozen=True)
class Outcome:
    """What became of one wanted channel: `done` says what was done (enabled, renewed, ok; on failure: not
    enabled, not renewed, not checked), `why` the reason for it, `error` why it failed (None: it is kept)."""

    channel_id: str
    done: str
    why: str = ""
    expires_at: datetime | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def summary(outcomes: Iterable[Outcome], now: datetime) -> str:
    """One line: what happened to each channel, e.g. '1000000068001 renewed (expires in 1d 2h): 6d 22h left'."""
    parts = []
    for o in outcomes:
        if o.error is not None:
            parts.append(f"{o.channel_id} {o.done} ({o.why}): {o.error}")
        elif o.done == "ok":
            parts.append(f"{o.channel_id} ok: {time_left(o.expires_at, now)} left")
        else:
            parts.append(f"{o.channel_id} {o.done} ({o.why}): {time_left(o.expires_at, now)} left")
    return "; ".join(parts) or "no channels wanted"


def shown_url(url: str | None) -> str | None:
    """A notify URL fit to print or log: scheme, host and path only. Other integrations' channels may carry
    credentials in the query (Zoho's own example passes an OAuth token there) or in the user part."""
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, host + port, parts.path, "…" if parts.query else "", ""))
