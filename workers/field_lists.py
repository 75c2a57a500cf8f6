"""Field lists: each CRM's own list of a module's fields (custom ones included), cached in Redis for a day.

Rules may name the fields of a module's built-in catalogue (workers/sources/) and those the CRM's own field
list reports (`extra_fields`, workers/rules/check.py). `crmflow rules check --online` and worker start-up read
the lists here: first the copy cached in Redis (keys.field_list, FIELD_LIST_TTL_S: a day), so that workers
starting together do not each ask the CRM once one has the list, then the CRM through the module's
`field_names` (Zoho GET /crm/v7/settings/fields?module=..., HubSpot GET /crm/properties/2026-03/{type}), whose
answer is cached in turn. `refresh` asks the CRM even when a copy is cached.

Reading is bounded by `wait_s`, for all the lists together. A call the shared limiter kept back (LIMITER_FULL,
LIMITER_PAUSED: workers/crm/limits.py) or the CRM refused for its rate limit (429) is tried again after the wait
it names (else RETRY_S) while time is left, so that a limiter momentarily full as workers start together does
not cost them the list. Any other failure is final at once: a refusal (credentials, scope, an unknown module), and
a CRM down or in error (timeout, no connection, 5xx), so that a worker starting while its CRM is away does not
wait for it. A list that cannot be had is `Unavailable`, its reason in crmflow's words (an error's code, never
the CRM's message): the worker falls back to the built-in catalogue, `rules check --online` stops.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import keys, sources
from workers.errors import CrmAuthError, CrmError, CrmNotSentError, CrmRateLimitedError, CrmTransientError
from workers.rules.check import ExtraFields

if TYPE_CHECKING:
    from workers.config import WorkerConfig

Target = tuple[str, str]
Why = Literal["not_configured", "no_list", "refused", "unreachable", "redis"]
Sleep = Callable[[float], Awaitable[None]]

# How long reading every field list may take in all, at worker start-up and in `rules check --online`.
FIELD_LIST_WAIT_S = 10.0
# Between tries of a failure that may pass, when the error names no wait of its own.
RETRY_S = 1.0
REDIS_TIMEOUT_S = 5.0
# What reading each CRM's field list needs of its credentials (docs/zoho-crm.md, docs/hubspot.md).
READ_SCOPES: Mapping[str, str] = {
    "zoho": "the scope ZohoCRM.settings.fields.READ",
    "hubspot": "the scope crm.objects.appointments.read (or crm.schemas.appointments.read)",
}


@dataclass(frozen=True)
class FieldList:
    """The fields a CRM reported for one module, when they were read, and whether they came from the cache."""

    source: str
    module: str
    fields: frozenset[str]
    read_at: datetime
    cached: bool


@dataclass(frozen=True)
class Unavailable:
    """A field list that could not be had, and why (crmflow's words: codes, never the CRM's message)."""

    source: str
    module: str
    why: Why
    reason: str

    def __str__(self) -> str:
        return f"{self.source}/{self.module}: {self.reason}"


@dataclass(frozen=True)
class FieldLists:
    """What was read: the lists had, and those that could not be."""

    lists: tuple[FieldList, ...] = ()
    unavailable: tuple[Unavailable, ...] = ()

    def extra_fields(self) -> ExtraFields:
        """The lists as the rules loader takes them (workers/rules/load.py `extra_fields`)."""
        return MappingProxyType({(fl.source, fl.module): fl.fields for fl in self.lists})


# ---- pure ------------------------------------------------------------------------------------------------


def encode(fields: frozenset[str], read_at: datetime) -> bytes:
    """The cached form: `{"fields": [sorted names], "read_at": ISO 8601}`."""
    return orjson.dumps({"fields": sorted(fields), "read_at": read_at.isoformat()})


def decode(raw: bytes | str | None) -> tuple[frozenset[str], datetime] | None:
    """The fields and read time of a cached copy; None for none, or for one crmflow cannot read (read again)."""
    if raw is None:
        return None
    try:
        data = orjson.loads(raw)
        fields, read_at = data["fields"], datetime.fromisoformat(data["read_at"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields) or read_at.tzinfo is None:
        return None
    return frozenset(fields), read_at


def refusal(source: str, error: CrmError) -> str:
    """Why a refused read failed, naming what the credentials need."""
    if isinstance(error, CrmAuthError):
        needs = READ_SCOPES.get(source, "the right to read it")
        return f"{source} refused crmflow's credentials or their scope ({error.code}); reading it needs {needs}"
    return f"{source} refused the request ({error.code})"


def gave_up(source: str, error: CrmTransientError, wait_s: float) -> str:
    """Why a read that failed in a way that may pass was given up (past the bound, or not waited for)."""
    if isinstance(error, CrmNotSentError):
        return f"the shared {source} limiter had no room for the call within {wait_s:g} s ({error.code})"
    if isinstance(error, CrmRateLimitedError):
        return f"{source} kept refusing for its rate limit for {wait_s:g} s ({error.code})"
    return f"{source} could not be reached or failed ({error.code})"


# ---- Redis and the CRMs ------------------------------------------------------------------------------------


async def cached(redis: Redis, source: str, module: str) -> FieldList | None:
    """The cached copy of a module's field list, if there is one crmflow can read."""
    found = decode(await redis.get(keys.field_list(source, module)))
    if found is None:
        return None
    return FieldList(source, module, found[0], found[1], cached=True)


async def remember(redis: Redis, field_list: FieldList) -> None:
    """Cache a list read from the CRM, for FIELD_LIST_TTL_S."""
    value = encode(field_list.fields, field_list.read_at)
    await redis.set(keys.field_list(field_list.source, field_list.module), value, ex=keys.FIELD_LIST_TTL_S)


async def read_field_lists(
    redis: Redis,
    clients: Mapping[str, Any],
    targets: Iterable[Target],
    *,
    now: datetime,
    refresh: bool = False,
    wait_s: float = FIELD_LIST_WAIT_S,
    sleep: Sleep = asyncio.sleep,
) -> FieldLists:
    """The field lists of `targets` ((source, module) pairs; unknown ones are left to the rules check), each from
    the cache or, on a miss or with `refresh`, from the CRM through `clients` (by source name), within `wait_s`."""
    deadline = time.monotonic() + wait_s
    lists: list[FieldList] = []
    unavailable: list[Unavailable] = []
    for source_name, module_name in sorted(set(targets)):
        source = sources.source_named(source_name)
        module = source.module(module_name) if source is not None else None
        if source is None or module is None:
            continue
        client = clients.get(source_name)
        if module.field_names is None:
            result: FieldList | Unavailable = Unavailable(
                source_name, module_name, "no_list", f"crmflow cannot read {source_name}'s field list"
            )
        elif client is None:
            reason = f"{source_name} is not configured ({source.settings_hint})"
            result = Unavailable(source_name, module_name, "not_configured", reason)
        else:
            read = _Read(redis, module.field_names, client, source_name, module_name, deadline, wait_s, sleep)
            result = await read.run(now=now, refresh=refresh)
        if isinstance(result, FieldList):
            lists.append(result)
        else:
            unavailable.append(result)
    return FieldLists(tuple(lists), tuple(unavailable))


@dataclass
class _Read:
    """One module's list: the cache, else the CRM, tried again within the deadline while failures may pass."""

    redis: Redis
    reader: Callable[[Any, str], Awaitable[frozenset[str]]]
    client: Any
    source: str
    module: str
    deadline: float
    wait_s: float
    sleep: Sleep

    def _unavailable(self, why: Why, reason: str) -> Unavailable:
        return Unavailable(self.source, self.module, why, reason)

    async def run(self, *, now: datetime, refresh: bool) -> FieldList | Unavailable:
        try:
            if not refresh and (hit := await cached(self.redis, self.source, self.module)) is not None:
                return hit
            names = await self._from_crm()
            if isinstance(names, Unavailable):
                return names
            field_list = FieldList(self.source, self.module, names, now, cached=False)
            await remember(self.redis, field_list)
            return field_list
        except (RedisError, OSError) as exc:
            return self._unavailable("redis", f"Redis is unavailable ({type(exc).__name__})")

    async def _from_crm(self) -> frozenset[str] | Unavailable:
        while True:
            left_s = self.deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(left_s, 0.0)):
                    return await self.reader(self.client, self.module)
            except TimeoutError:
                return self._unavailable("unreachable", f"{self.source} did not answer within {self.wait_s:g} s")
            except CrmRateLimitedError as exc:
                pause_s = exc.retry_after_s or RETRY_S
                if pause_s >= self.deadline - time.monotonic():
                    return self._unavailable("unreachable", gave_up(self.source, exc, self.wait_s))
                await self.sleep(pause_s)
            except CrmTransientError as exc:
                return self._unavailable("unreachable", gave_up(self.source, exc, self.wait_s))
            except CrmError as exc:
                return self._unavailable("refused", refusal(self.source, exc))


async def configured_field_lists(
    config: WorkerConfig,
    targets: Iterable[Target] | None = None,
    *,
    now: datetime,
    refresh: bool = False,
    wait_s: float = FIELD_LIST_WAIT_S,
) -> FieldLists:
    """The field lists with the worker's settings: its Redis and CRM credentials, each client as workers build it
    (sharing the CRM's limiter). `targets` None: every module of each configured source (worker start-up)."""
    redis = Redis.from_url(config.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(config.http_timeout_s, connect=5.0)) as http:
            clients = {
                source.name: client
                for source in sources.all_sources()
                if (client := source.connect(config, redis, http)) is not None
            }
            if targets is None:
                targets = [
                    (source.name, module.name)
                    for source in sources.all_sources()
                    if source.name in clients
                    for module in source.modules
                    if module.field_names is not None
                ]
            return await read_field_lists(redis, clients, targets, now=now, refresh=refresh, wait_s=wait_s)
    finally:
        await redis.aclose()
