"""The online checks, in order: Redis, PUBLIC_BASE_URL's scheme, webhooks refused, Zoho (grant, scopes,
channels), HubSpot.

Takes the clients (an httpx.AsyncClient, a Redis client) and the settings the entry point read; the checks of
each part are in redis_probe, webhook_state, zoho_probe, channel_state and hubspot_probe. A CRM is probed when
it is on in the workers and their settings are valid; otherwise its checks are skipped (the offline part says
why).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from crmflow.doctor.channel_state import channel_findings
from crmflow.doctor.findings import Finding, fail, ok, skip, warn
from crmflow.doctor.hosts import is_real_crm
from crmflow.doctor.hubspot_probe import check_hubspot
from crmflow.doctor.offline import DEFAULTS, is_on, valid_urls
from crmflow.doctor.redis_probe import check_redis
from crmflow.doctor.webhook_state import read_state, webhook_findings
from crmflow.doctor.zoho_probe import check_zoho
from workers.channels import Wanted
from workers.config import WorkerConfig
from workers.crm.zoho_watch_models import parse_channels
from workers.errors import CrmError

HUBSPOT_API_BASE = "https://api.hubapi.com"


def public_url_scheme_findings(env: Mapping[str, str]) -> list[Finding]:
    """PUBLIC_BASE_URL is what Zoho and HubSpot call from the internet (and what HubSpot signs): https. http can
    only be right against the sandbox, so it is a warning when no CRM in use is at Zoho's or HubSpot's own
    hosts (crmflow.doctor.hosts), and a failure when one is. A URL that does not parse is the offline part's."""
    check = "public URL"
    if "PUBLIC_BASE_URL" in env and "PUBLIC_BASE_URL" not in valid_urls(env):
        return [skip(check, "not checked: it is not a valid URL", setting="PUBLIC_BASE_URL")]
    env = valid_urls(env)
    url = env.get("PUBLIC_BASE_URL")
    if url is None:
        return [skip(check, "not set: nothing calls this receiver from outside", setting="PUBLIC_BASE_URL")]
    if httpx.URL(url).scheme == "https":
        return [ok(check, "is https", setting="PUBLIC_BASE_URL")]
    bases = []
    if is_on(env, "worker", "zoho") or is_on(env, "receiver", "zoho"):
        bases += [env.get(name, DEFAULTS[name]) for name in ("ZOHO_API_DOMAIN", "ZOHO_ACCOUNTS_URL")]
    if is_on(env, "worker", "hubspot") or is_on(env, "receiver", "hubspot"):
        bases.append(env.get("HUBSPOT_API_BASE", HUBSPOT_API_BASE))
    fix = "serve the receiver behind TLS (docs/operations.md) and set PUBLIC_BASE_URL=https://..."
    if any(is_real_crm(base) for base in bases):
        message = "is not https: Zoho and HubSpot call it from the internet, and HubSpot signs the https URL"
        return [fail(check, message, setting="PUBLIC_BASE_URL", fix=fix)]
    message = "is not https; right only against the sandbox (no CRM here is at Zoho's or HubSpot's own hosts)"
    return [warn(check, message, setting="PUBLIC_BASE_URL", fix=fix)]


async def zoho_findings(
    http: httpx.AsyncClient, config: WorkerConfig, now: datetime, redis: Redis | None = None
) -> list[Finding]:
    """`redis`: a Redis that answered, to share the workers' Zoho token through (zoho_probe)."""
    if config.zoho_client_id is None or config.zoho_client_secret is None or config.zoho_refresh_token is None:
        return [skip("zoho", "off in the workers: not checked")]
    found, watch = await check_zoho(
        http,
        accounts_url=config.zoho_accounts_url,
        api_domain=config.zoho_api_domain,
        client_id=config.zoho_client_id,
        client_secret=config.zoho_client_secret,
        refresh_token=config.zoho_refresh_token,
        redis=redis,
    )
    return [*found, *_channels(config, watch, now)]


def _channels(config: WorkerConfig, watch: object, now: datetime) -> list[Finding]:
    check = "zoho channels"
    if not config.zoho_channel_ids:
        return [skip(check, "not checked: no channel named", setting="ZOHO_CHANNEL_IDS")]
    if config.public_base_url is None or config.zoho_notify_token is None:
        missing = "PUBLIC_BASE_URL" if config.public_base_url is None else "ZOHO_NOTIFY_TOKEN"
        return [skip(check, f"not checked: {missing} is not set", setting=missing)]
    if watch is None:
        return [skip(check, "not checked: Zoho's channel list could not be read")]
    try:
        have = parse_channels(watch)
    except CrmError as exc:
        return [fail(check, f"Zoho's channel list is unreadable ({exc})", setting="ZOHO_API_DOMAIN")]
    wanted = Wanted(config.zoho_channel_ids, config.public_base_url, config.zoho_notify_token)
    upkeep = config.zoho_channel_check_s > 0
    return channel_findings(wanted, have, now, upkeep=upkeep)


async def hubspot_findings(http: httpx.AsyncClient, config: WorkerConfig) -> list[Finding]:
    if config.hubspot_access_token is None:
        return [skip("hubspot", "off in the workers: not checked")]
    return await check_hubspot(http, api_base=config.hubspot_api_base, token=config.hubspot_access_token)


async def webhooks(env: Mapping[str, str], redis: Redis | None, now: datetime) -> list[Finding]:
    """For each source on in the receiver: refused for a wrong secret or token and none accepted since."""
    found = []
    for source in ("hubspot", "zoho"):
        if not is_on(env, "receiver", source):
            continue
        if redis is None:
            found.append(skip(f"{source} webhooks", "not checked: Redis did not answer", setting="REDIS_URL"))
            continue
        try:
            state = await read_state(redis, source)
        except (RedisError, OSError) as exc:
            message = f"not checked: Redis failed ({type(exc).__name__})"
            found.append(skip(f"{source} webhooks", message, setting="REDIS_URL"))
            continue
        found += webhook_findings(source, state, int(now.timestamp() * 1000))
    return found


async def online_findings(
    env: Mapping[str, str],
    *,
    redis: Redis | None,
    redis_where: str,
    worker: WorkerConfig | None,
    http: httpx.AsyncClient,
    now: datetime,
) -> list[Finding]:
    """Every online check. `redis` None: REDIS_URL could not even be parsed (the offline part says why)."""
    found = [skip("redis", "not checked: REDIS_URL is invalid", setting="REDIS_URL")]
    if redis is not None:
        found = [await check_redis(redis, redis_where)]
    answered = redis if found[0].status == "ok" else None
    found += public_url_scheme_findings(env)
    found += await webhooks(env, answered, now)
    if worker is None:
        return [*found, skip("zoho, hubspot", "not checked: the worker settings are invalid")]
    return [*found, *await zoho_findings(http, worker, now, answered), *await hubspot_findings(http, worker)]
