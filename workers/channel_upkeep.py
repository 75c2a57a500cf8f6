"""Zoho channel upkeep, carried out: list the channels, enable or renew per the plan, record failures, the duty.

Used by `crmflow zoho subscribe|renew` and by the workers' "zoho-channels" duty. One GET per check, then at
most one POST (the channels to enable) and one PATCH (those to renew), each carrying every channel's full body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from redis.asyncio import Redis

from workers import keys
from workers.channels import Outcome, Step, Wanted, asked_expiry, grant_problem, plan, summary
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_watch_models import ChannelSpec, Granted
from workers.duties import Duty, DutyIncomplete
from workers.errors import CrmError

logger = logging.getLogger("crmflow.channels")

DUTY_NAME = "zoho-channels"
SCOPE = "ZohoCRM.notifications.ALL"


def _explain(exc: CrmError) -> str:
    text = " ".join(str(exc).split())
    if exc.code == "OAUTH_SCOPE_MISMATCH":
        text += f" (the refresh token needs the scope {SCOPE})"
    return text


async def _write(
    client: ZohoClient, method: str, specs: list[ChannelSpec], expiry: datetime
) -> dict[str, Granted | str]:
    """Per channel: what Zoho granted, or why it failed."""
    if not specs:
        return {}
    write = client.enable_channels if method == "POST" else client.update_channels
    try:
        answers = await write(specs, expiry)
    except CrmError as exc:
        return {spec.channel_id: _explain(exc) for spec in specs}
    return {cid: answer if isinstance(answer, Granted) else _explain(answer) for cid, answer in answers.items()}


async def carry_out(client: ZohoClient, wanted: Wanted, steps: list[Step], now: datetime) -> list[Outcome]:
    """Enable (POST) and renew (PATCH) as the steps say, and check each expiry Zoho granted against the one asked."""
    expiry = asked_expiry(now)
    enable = [wanted.spec(step.channel_id) for step in steps if step.action == "enable"]
    renew = [wanted.spec(step.channel_id) for step in steps if step.action == "renew"]
    answers = await _write(client, "POST", enable, expiry)
    answers.update(await _write(client, "PATCH", renew, expiry))
    outcomes: list[Outcome] = []
    for step in steps:
        if step.action == "ok":
            continue
        done = "enabled" if step.action == "enable" else "renewed"
        answer = answers[step.channel_id]
        if isinstance(answer, str):
            outcomes.append(Outcome(step.channel_id, f"not {done}", step.reason, error=answer))
        else:
            problem = grant_problem(expiry, answer)
            outcomes.append(Outcome(step.channel_id, done, step.reason, answer.expires_at, problem))
    return outcomes


async def keep_channels(client: ZohoClient, wanted: Wanted, now: datetime, *, renew_all: bool = False) -> list[Outcome]:
    """One check: GET the channels, then enable the missing ones and renew those near expiry or not as wanted
    (every one with `renew_all`). A failed listing fails every channel with its reason."""
    try:
        have = await client.list_channels()
    except CrmError as exc:
        reason = f"listing the channels failed: {_explain(exc)}"
        return [Outcome(cid, "not checked", "GET /actions/watch", error=reason) for cid in wanted.channel_ids]
    steps = plan(wanted, have, now, renew_all=renew_all)
    done = {outcome.channel_id: outcome for outcome in await carry_out(client, wanted, steps, now)}
    return [
        done.get(step.channel_id) or Outcome(step.channel_id, "ok", step.reason, have[step.channel_id].expires_at)
        for step in steps
    ]


async def subscribe(client: ZohoClient, wanted: Wanted, now: datetime) -> list[Outcome]:
    """Enable (POST) every wanted channel with its full body, whatever Zoho has."""
    steps = [Step(cid, "enable", "subscribe") for cid in wanted.channel_ids]
    return await carry_out(client, wanted, steps, now)


@dataclass(frozen=True)
class Failure:
    """The last time a channel could not be kept: why, when, and by whom (a worker, or a command)."""

    reason: str
    at: str
    by: str


class ChannelFailures:
    """The channels that could not be kept, in Redis (keys.ZOHO_CHANNEL_FAILURES), for `crmflow zoho channels`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def record(self, outcomes: list[Outcome], now: datetime, by: str) -> None:
        """Remember each failure, forget a channel that is kept again, and note each expiry Zoho reported."""
        kept = [o.channel_id for o in outcomes if o.ok]
        failed = {
            o.channel_id: orjson.dumps({"reason": f"{o.done}: {o.error}", "at": now.isoformat(), "by": by})
            for o in outcomes
            if not o.ok
        }
        if kept:
            await self._redis.hdel(keys.ZOHO_CHANNEL_FAILURES, *kept)  # type: ignore[misc]
        if failed:
            await self._redis.hset(keys.ZOHO_CHANNEL_FAILURES, mapping=failed)  # type: ignore[misc]
        # Each channel's expiry as Zoho last granted or listed it, for crmflow_zoho_channel_expiry_timestamp_seconds.
        expiry = {o.channel_id: str(o.expires_at.timestamp()) for o in outcomes if o.expires_at is not None}
        if expiry:
            await self._redis.hset(keys.ZOHO_CHANNEL_EXPIRY, mapping=expiry)  # type: ignore[misc]

    async def forget(self, channel_ids: list[str]) -> None:
        """Forget channels that were disabled: their failures and their expiry."""
        if channel_ids:
            await self._redis.hdel(keys.ZOHO_CHANNEL_FAILURES, *channel_ids)  # type: ignore[misc]
            await self._redis.hdel(keys.ZOHO_CHANNEL_EXPIRY, *channel_ids)  # type: ignore[misc]

    async def forget_unwanted(self, wanted_ids: tuple[str, ...]) -> None:
        """Forget the failures and expiry of every channel no longer wanted (dropped from ZOHO_CHANNEL_IDS):
        nothing renews those, and an expiry kept would fire CrmflowZohoChannelExpiringSoon for good."""
        for key in (keys.ZOHO_CHANNEL_FAILURES, keys.ZOHO_CHANNEL_EXPIRY):
            fields: list[bytes | str] = await self._redis.hkeys(key)  # type: ignore[misc]
            names = [f.decode() if isinstance(f, bytes) else f for f in fields]
            unwanted = [name for name in names if name not in wanted_ids]
            if unwanted:
                await self._redis.hdel(key, *unwanted)  # type: ignore[misc]

    async def all(self) -> dict[str, Failure]:
        raw: dict[bytes | str, bytes | str] = await self._redis.hgetall(keys.ZOHO_CHANNEL_FAILURES)  # type: ignore[misc]
        failures: dict[str, Failure] = {}
        for key, value in raw.items():
            entry = orjson.loads(value)
            channel_id = key.decode() if isinstance(key, bytes) else key
            failures[channel_id] = Failure(str(entry["reason"]), str(entry["at"]), str(entry["by"]))
        return failures


def log_failures(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if not outcome.ok:
            logger.error(
                "zoho channel %s could not be kept (%s; %s): %s",
                outcome.channel_id,
                outcome.done,
                outcome.why,
                outcome.error,
            )


def channel_duty(
    client: ZohoClient, redis: Redis, wanted: Wanted, interval_s: float, clock: Callable[[], datetime], by: str
) -> Duty:
    """The workers' duty: every `interval_s`, one worker keeps the wanted channels alive (workers/duties.py);
    `by` names it in the failures recorded."""
    failures = ChannelFailures(redis)

    async def run() -> str:
        now = clock()
        outcomes = await keep_channels(client, wanted, now)
        await failures.forget_unwanted(wanted.channel_ids)
        await failures.record(outcomes, now, by=by)
        log_failures(outcomes)
        done = summary(outcomes, now)
        if any(not outcome.ok for outcome in outcomes):
            # Recorded as failed and tried again within a minute, not an interval later: a channel missing now
            # means callbacks lost until it is back.
            raise DutyIncomplete(done)
        return done

    return Duty(DUTY_NAME, interval_s, run)
