"""CRM limits: one limiter per CRM account in Redis, shared by every worker process; every CRM call counted.

Every call a CRM client makes passes its `Gate` (workers/crm/responses.py `send`), which waits for the
account's limit, sends, releases and counts the call by kind, all through Redis so that every worker process
(and the sweep, and the channel upkeep) draws on the same budget:

- Zoho (`ZohoLimiter`): a concurrency cap per app and org (docs/zoho-crm.md, "Errors and limits"; by
  edition: Free 5, Standard 10, Professional 15, Enterprise 20, Ultimate 25) and a sub-cap of
  min(10, cap) for heavy calls (GET records with sort_by or cvid, search, COQL, bulk, writes of more than 10
  records). A slot is a member of a sorted set scored by its lease expiry, longer than any call may last (the
  gate cuts a call off at `lease_s - LEASE_MARGIN_S`), so a slot held by a killed worker frees itself.
- HubSpot (`HubSpotLimiter`): at most HUBSPOT_REQUESTS_PER_10S calls in any rolling 10 s (fewer when
  HubSpot's X-HubSpot-RateLimit-Max says so), and at most 5 search calls in any rolling second. A call is
  entered in the window when it starts and re-dated when its answer arrives, so that the next call admitted
  in its place reaches HubSpot at least 10 s after it did, whatever the network's delays. Search calls count
  against both windows: whether HubSpot exempts them from the 10 s limit is documented only in the
  appointments spec, and counting them twice is right either way. Within a job (`reserving`), the first call is
  admitted only with room for the job's usual calls, and holds the places for those after it: a job deferred by
  the window then has not spent its record's read, which its retry would make again.
- A 429 pauses every worker of the account (a key with a TTL): HubSpot's by its policy
  (workers/crm/hubspot_models.py), as does an answer saying the daily quota is spent. Zoho documents no
  Retry-After and no back-off (UNCONFIRMED). A lone 429 sends only its own job back (retried with backoff,
  as any transient failure); from the second 429 in a row (no other answer from any worker between them: the
  limit really is reached) crmflow pauses every worker ZOHO_PAUSE_S (0.1 s: a concurrency 429 clears as soon
  as calls in flight end), doubling with each further 429 while none succeeds, up to 5 minutes (the same 429
  also means the 24-hour credits are spent, when every call is refused); a Retry-After, if Zoho ever sends
  one, is honoured at once.
- Workers wait for a slot or a pause to end only briefly: at most HOLD_S for room the limiter knows comes
  later (HubSpot's window, a pause), at most `max_wait_s` for Zoho's slots to free; past that the call raises
  CrmNotSentError (a CrmRateLimitedError), and the job is retried when the room comes, without spending a try
  (workers/jobs.py), instead of holding its place in the worker (where it would starve the other CRM's
  jobs); a ledger entry made for the write that was never sent is dropped (workers/ledger.py), so the retry
  need not look in the CRM first.

Counts (`crm_calls`): a hash per source and UTC day, fields read, write, token, search, watch (calls by
kind), http_429 (answers that were 429) and coalesced (events folded into a queued job, workers/queue.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from workers import keys
from workers.crm.hubspot_models import DAILY_WAIT_S, rate_limit_wait_s
from workers.crm.responses import body_of
from workers.errors import CrmNotSentError, CrmTransientError

Kind = Literal["read", "write", "token", "search", "watch"]
KINDS: tuple[Kind, ...] = ("read", "write", "token", "search", "watch")
COUNT_FIELDS = (*KINDS, "http_429", "coalesced")

EDITIONS: Mapping[str, int] = {"free": 5, "standard": 10, "professional": 15, "enterprise": 20, "ultimate": 25}
HEAVY_CONCURRENCY = 10  # Zoho's sub-concurrency for heavy calls, "typically 10"
HEAVY_RECORDS = 10  # writes of more than this many records are heavy
LEASE_MARGIN_S = 5.0
ZOHO_PAUSE_S = 0.1
ZOHO_PAUSE_CAP_S = 300.0
# 429s in a row (no other answer between them, from any worker) before every worker pauses: a lone 429 only
# sends its own job back (retried with backoff); a second before anything succeeds means the limit is reached.
ZOHO_STRIKES = 2
STRIKE_WINDOW_S = 600
HUBSPOT_WINDOW_MS = 10_000
HUBSPOT_SEARCH_PER_S = 5
MAX_SEEN_TTL_S = 86_400
# How often a waiting call looks again while every slot is taken: from POLL_MIN_S, doubling up to POLL_MAX_S.
# A known wait for room (HubSpot's window, a pause) longer than this sends the job back to the queue instead.
HOLD_S = 0.25
POLL_MIN_S = 0.005
POLL_MAX_S = 0.05

# Redis's own clock, so that every worker (on any host) measures leases and windows alike.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: slots, heavy slots, pause. ARGV: member, lease (ms), cap, heavy cap, heavy (1/0).
# Returns {1, 0} admitted, {0, 0} every slot taken, {-1, ms} paused for ms more.
_ZOHO_ACQUIRE = (
    _NOW
    + """
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return {-1, paused} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return {0, 0} end
local heavy = ARGV[5] == '1'
if heavy and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {0, 0} end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if heavy then
  redis.call('ZADD', KEYS[2], expiry, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return {1, 0}
"""
)

# KEYS: slots, heavy slots, counts, strikes. ARGV: member, kind, 429 (1/0), counts TTL (s).
# An answer other than 429 ends a run of 429s: the next pause starts again from the base.
_ZOHO_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if ARGV[3] == '1' then
  redis.call('HINCRBY', KEYS[3], 'http_429', 1)
else
  redis.call('DEL', KEYS[4])
end
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""

# KEYS: window, search window, pause, max seen. ARGV: member, limit, search limit, search (1/0), key TTL (ms),
# places to reserve besides the call's own, a place reserved earlier to take ('' none). A reserved place still in
# the window is taken at once (re-dated as this call); otherwise the call is admitted only with room for itself and
# the places it reserves (each entered as member#i, dated now, so that it leaves the window by itself).
# Returns {1, places reserved} admitted, {0, ms} full until enough calls leave the window, {-1, ms} paused.
_HUBSPOT_ACQUIRE = (
    _NOW
    + """
local paused = redis.call('PTTL', KEYS[3])
if paused > 0 then return {-1, paused} end
local limit = tonumber(ARGV[2])
local seen = tonumber(redis.call('GET', KEYS[4]) or limit)
if seen < limit then limit = seen end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10000)
if ARGV[7] ~= '' and redis.call('ZREM', KEYS[1], ARGV[7]) == 1 then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {1, 0}
end
local extra = math.max(math.min(tonumber(ARGV[6]), limit - 1), 0)
local count = redis.call('ZCARD', KEYS[1])
if count + extra >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], count + extra - limit, count + extra - limit, 'WITHSCORES')
  return {0, math.max(tonumber(oldest[2]) + 10000 - now + 1, 1)}
end
local search = ARGV[4] == '1'
if search then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 1000)
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {0, math.max(tonumber(oldest[2]) + 1000 - now + 1, 1)}
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
for i = 1, extra do
  redis.call('ZADD', KEYS[1], now, ARGV[1] .. '#' .. i)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, extra}
"""
)

# KEYS: window, search window, counts. ARGV: member, kind, 429 (1/0), counts TTL (s), search (1/0), key TTL (ms).
# The call is re-dated to when its answer came: HubSpot counted it at some moment before that.
_HUBSPOT_RELEASE = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[3], 'http_429', 1) end
redis.call('EXPIRE', KEYS[3], ARGV[4])
return 1
"""
)

# KEYS: pause, strikes. ARGV: the wait asked for (ms, 0 = none), base (ms), cap (ms), strike window (s),
# strikes before the first pause. A pause only ever grows. Without a wait asked for, a run of 429s with no
# other answer between them pauses every worker from its ARGV[5]th 429 on, doubling with each one after; a
# 429 that arrives while a pause is already in force (a call sent before it began) adds no strike.
_PAUSE = """
local ms = tonumber(ARGV[1])
local current = redis.call('PTTL', KEYS[1])
if ms <= 0 then
  if current > 0 then return current end
  local strikes = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  if strikes < tonumber(ARGV[5]) then return 0 end
  ms = math.min(tonumber(ARGV[2]) * 2 ^ (strikes - tonumber(ARGV[5])), tonumber(ARGV[3]))
end
ms = math.floor(ms)
if current < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return math.max(ms, current)
"""


@dataclass
class Reservation:
    """Room in HubSpot's window held for one job's calls (`reserving`): its first call is admitted only with room
    for `calls` in all, the places it reserves besides its own (`held`) are taken by its next calls, and those
    left unused go back when the job ends; any that are not given back leave the window by themselves, 10 s on."""

    calls: int
    made: bool = False
    held: list[str] = field(default_factory=list)
    limiter: HubSpotLimiter | None = None


_RESERVATION: ContextVar[Reservation | None] = ContextVar("crmflow_reservation", default=None)


@contextlib.asynccontextmanager
async def reserving(calls: int) -> AsyncIterator[Reservation]:
    """Within this block (one job), the first HubSpot call spends nothing unless the window has room for `calls`
    calls, and holds that room for the calls after it, so that a job never spends its record's GET only to be
    deferred, by the window, before the write it was read for (the retry would read the record again)."""
    reservation = Reservation(calls)
    token = _RESERVATION.set(reservation)
    try:
        yield reservation
    finally:
        _RESERVATION.reset(token)
        if reservation.held and reservation.limiter is not None:
            with contextlib.suppress(RedisError):
                await asyncio.shield(reservation.limiter.unreserve(reservation.held))
            reservation.held = []


def account_of(*parts: str) -> str:
    """A CRM account's name in Redis keys: a digest of what identifies it (never a secret in the clear)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def day_of(moment: float) -> str:
    """The UTC day (YYYY-MM-DD) of an epoch time: the counts' key."""
    return datetime.fromtimestamp(moment, UTC).date().isoformat()


def edition_concurrency(edition: str) -> int:
    """Zoho's concurrency cap for an edition (docs/zoho-crm.md, "Errors and limits")."""
    return EDITIONS[edition]


def _plain(path: str) -> tuple[str, str]:
    route, _, query = path.partition("?")
    return route.rstrip("/"), query


def call_kind(method: str, path: str) -> Kind:
    """What a CRM call is for the counts: a watch-channel call, a search, a read or a write. Pure.

    Zoho: /actions/watch → watch; /coql and .../search → search. HubSpot: .../search → search; a batch
    read (POST .../batch/read) is a read. Otherwise GET is a read and anything else a write.
    """
    route, _ = _plain(path)
    if "/actions/watch" in route:
        return "watch"
    if route.endswith("/search") or route.endswith("/coql"):
        return "search"
    if method == "GET" or route.endswith("/batch/read"):
        return "read"
    return "write"


def zoho_is_heavy(method: str, path: str, json: Any = None) -> bool:
    """Whether a Zoho call counts against the sub-concurrency of heavy calls. Pure.

    GET records with sort_by or cvid, search, COQL, bulk APIs, and writes of more than 10 records.
    """
    route, query = _plain(path)
    params = {part.partition("=")[0] for part in query.split("&") if part}
    if route.endswith(("/search", "/coql")) or "/bulk" in route:
        return True
    if method == "GET" and params & {"sort_by", "cvid"}:
        return True
    data = json.get("data") if isinstance(json, dict) else None
    return method != "GET" and isinstance(data, list) and len(data) > HEAVY_RECORDS


async def crm_calls(redis: Redis, source: str, day: date | str) -> dict[str, int]:
    """The counts of one source on one UTC day: every field of COUNT_FIELDS, 0 when none."""
    key = keys.crm_calls(source, day if isinstance(day, str) else day.isoformat())
    raw: dict[bytes | str, bytes | str] = await redis.hgetall(key)  # type: ignore[misc]
    counted = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
    return {name: counted.get(name, 0) for name in COUNT_FIELDS} | counted


class CallCounter:
    """A gate that only counts (Zoho's token requests, which are not API calls for the concurrency cap)."""

    def __init__(
        self, redis: Redis, source: str, *, kind: Kind | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = redis
        self._source = source
        self._kind = kind
        self._clock = clock

    async def call(
        self, method: str, path: str, request: Callable[[], Awaitable[httpx.Response]], *, json: Any = None
    ) -> httpx.Response:
        limited = False
        try:
            response = await request()
            limited = response.status_code == 429
            return response
        finally:
            key = keys.crm_calls(self._source, day_of(self._clock()))
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, self._kind or call_kind(method, path), 1)
                if limited:
                    pipe.hincrby(key, "http_429", 1)
                pipe.expire(key, keys.CRM_CALLS_TTL_S)
                await pipe.execute()


class _Limiter:
    """What both CRMs' limiters share: waiting within a bound, the shared pause, cutting off overlong calls."""

    source: str
    # A job that found the limiter full is retried after 1 s plus up to this long, at random.
    full_retry_s: float

    def __init__(
        self,
        redis: Redis,
        account: str,
        *,
        max_wait_s: float,
        call_timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._account = account
        self._max_wait_s = max_wait_s
        self._call_timeout_s = call_timeout_s
        self._clock = clock
        self._pause_script = redis.register_script(_PAUSE)

    def key(self, part: str) -> str:
        return keys.crm_limit(self.source, self._account, part)

    def _counts_key(self) -> str:
        return keys.crm_calls(self.source, day_of(self._clock()))

    async def _wait(self, try_acquire: Callable[[], Awaitable[tuple[int, int]]]) -> None:
        """Until `try_acquire` admits the call; CrmNotSentError when room would come too late for this job.

        Room that the limiter says comes later than HOLD_S (HubSpot's window, a pause) is not waited for in
        the worker: the job goes back to the queue at once, due when the room comes (spread at random over
        `full_retry_s`, so that deferred jobs do not all come back at the same moment), and gives its place
        in the worker to jobs of other CRMs, which a wait here would starve. Room that comes as calls end
        (Zoho's slots: no known time) is polled for up to `max_wait_s`, then the job goes back the same way.
        """
        deadline = time.monotonic() + self._max_wait_s
        poll_s = POLL_MIN_S
        while True:
            status, wait_ms = await try_acquire()
            if status == 1:
                return
            wait_s = wait_ms / 1000 if wait_ms > 0 else poll_s * (0.5 + random.random())
            left_s = deadline - time.monotonic()
            if left_s <= 0 or (wait_ms > 0 and wait_s > min(HOLD_S, left_s)):
                paused = status < 0
                why = "paused after a 429" if paused else "at its limit"
                known = wait_s if wait_ms > 0 else 0.0
                raise CrmNotSentError(
                    f"{self.source}: the account's shared limiter is {why}; room in {known:.1f}s at the soonest",
                    code="LIMITER_PAUSED" if paused else "LIMITER_FULL",
                    # Known: when the room comes. Unknown (slots free as calls end): a second, spread at random.
                    retry_after_s=(known or 1.0) + (0.0 if paused else random.random() * self.full_retry_s),
                )
            await asyncio.sleep(min(wait_s, left_s))
            if wait_ms <= 0:
                poll_s = min(poll_s * 2, POLL_MAX_S)

    async def pause(self, wait_s: float | None, *, base_s: float, cap_s: float, after_strikes: int = 1) -> float:
        """Pause every worker of the account for `wait_s`, or without one, from the `after_strikes`th 429 in a row
        on, for the doubling back-off from base_s; the pause in force (0: none)."""
        args = [int((wait_s or 0) * 1000), int(base_s * 1000), int(cap_s * 1000), STRIKE_WINDOW_S, after_strikes]
        ms = await self._pause_script(keys=[self.key("pause"), self.key("strikes")], args=args)
        return int(ms) / 1000

    async def _timed(self, request: Callable[[], Awaitable[httpx.Response]], method: str, path: str) -> httpx.Response:
        try:
            async with asyncio.timeout(self._call_timeout_s):
                return await request()
        except TimeoutError as exc:
            route = path.partition("?")[0]
            message = f"{method} {route}: no answer within {self._call_timeout_s:.0f}s"
            raise CrmTransientError(message, code="TIMEOUT") from exc


class ZohoLimiter(_Limiter):
    """Zoho's concurrency cap (and heavy sub-cap) across every worker process, with crash-safe slots."""

    source = "zoho"
    full_retry_s = 1.0  # slots free as soon as calls end

    def __init__(
        self,
        redis: Redis,
        account: str,
        *,
        concurrency: int,
        lease_s: float,
        max_wait_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(redis, account, max_wait_s=max_wait_s, call_timeout_s=lease_s - LEASE_MARGIN_S, clock=clock)
        if lease_s <= LEASE_MARGIN_S or concurrency < 1:
            raise ValueError("a Zoho limiter needs a concurrency of at least 1 and a lease above 5 s")
        self.concurrency = concurrency
        self.heavy_concurrency = min(HEAVY_CONCURRENCY, concurrency)
        self._lease_ms = int(lease_s * 1000)
        self._acquire = redis.register_script(_ZOHO_ACQUIRE)
        self._release = redis.register_script(_ZOHO_RELEASE)

    async def call(
        self, method: str, path: str, request: Callable[[], Awaitable[httpx.Response]], *, json: Any = None
    ) -> httpx.Response:
        member = f"{time.time_ns()}:{random.getrandbits(48):012x}"
        heavy = "1" if zoho_is_heavy(method, path, json) else "0"
        slots = [self.key("slots"), self.key("heavy")]

        async def try_acquire() -> tuple[int, int]:
            args: list[str | int] = [member, self._lease_ms, self.concurrency, self.heavy_concurrency, heavy]
            status, wait_ms = await self._acquire(keys=[*slots, self.key("pause")], args=args)
            return int(status), int(wait_ms)

        await self._wait(try_acquire)
        limited = False
        try:
            response = await self._timed(request, method, path)
            limited = response.status_code == 429
        finally:
            release = self._release(
                keys=[*slots, self._counts_key(), self.key("strikes")],
                args=[member, call_kind(method, path), int(limited), keys.CRM_CALLS_TTL_S],
            )
            await asyncio.shield(release)
        if limited:
            await self.pause(
                _retry_after(response), base_s=ZOHO_PAUSE_S, cap_s=ZOHO_PAUSE_CAP_S, after_strikes=ZOHO_STRIKES
            )
        return response


def _retry_after(response: httpx.Response) -> float | None:
    try:
        value = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return value if value > 0 else None


class HubSpotLimiter(_Limiter):
    """HubSpot's rolling 10 s window and the search API's 5 per second, across every worker process."""

    source = "hubspot"
    full_retry_s = 9.0  # spread over the window

    def __init__(
        self,
        redis: Redis,
        account: str,
        *,
        requests_per_10s: int,
        call_timeout_s: float,
        max_wait_s: float,
        search_per_s: int = HUBSPOT_SEARCH_PER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(redis, account, max_wait_s=max_wait_s, call_timeout_s=call_timeout_s, clock=clock)
        if requests_per_10s < 1 or search_per_s < 1:
            raise ValueError("HubSpot's limits must be at least 1")
        self.requests_per_10s = requests_per_10s
        self.search_per_s = search_per_s
        # Window entries live as long as a call may last plus the window (and a margin).
        self._key_ttl_ms = int((call_timeout_s + 60) * 1000) + HUBSPOT_WINDOW_MS
        self._acquire = redis.register_script(_HUBSPOT_ACQUIRE)
        self._release = redis.register_script(_HUBSPOT_RELEASE)

    async def call(
        self, method: str, path: str, request: Callable[[], Awaitable[httpx.Response]], *, json: Any = None
    ) -> httpx.Response:
        member = f"{time.time_ns()}:{random.getrandbits(48):012x}"
        kind = call_kind(method, path)
        search = "1" if kind == "search" else "0"
        windows = [self.key("window"), self.key("search")]
        # A job's calls (search aside, which has a window of its own): the first reserves room for the others.
        reservation = _RESERVATION.get() if search == "0" else None
        extra, take = 0, ""
        if reservation is not None:
            if reservation.held:
                take = reservation.held.pop(0)  # taken, or gone from the window: either way not held any more
            elif not reservation.made:
                extra = reservation.calls - 1
        reserved = 0

        async def try_acquire() -> tuple[int, int]:
            nonlocal reserved
            args: list[str | int] = [member, self.requests_per_10s, self.search_per_s, search, self._key_ttl_ms]
            args += [extra, take]
            status, value = await self._acquire(keys=[*windows, self.key("pause"), self.key("max")], args=args)
            if int(status) == 1:
                reserved = int(value)
                return 1, 0
            return int(status), int(value)

        await self._wait(try_acquire)
        if reservation is not None and extra:
            reservation.made = True
            reservation.held = [f"{member}#{i}" for i in range(1, reserved + 1)]
            reservation.limiter = self
        limited = False
        try:
            response = await self._timed(request, method, path)
            limited = response.status_code == 429
        finally:
            args: list[str | int] = [member, kind, int(limited), keys.CRM_CALLS_TTL_S, search, self._key_ttl_ms]
            await asyncio.shield(self._release(keys=[*windows, self._counts_key()], args=args))
        await self._observe(response)
        return response

    async def unreserve(self, places: list[str]) -> None:
        """Give back places a job reserved in the window and did not use."""
        await self._redis.zrem(self.key("window"), *places)

    async def _observe(self, response: httpx.Response) -> None:
        """Fold HubSpot's rate-limit headers and 429s into the shared state (docs/hubspot.md, "Rate limits")."""
        headers = response.headers
        if response.status_code == 429:
            try:
                body = body_of(response)
            except CrmTransientError:
                body = {}
            wait_s = rate_limit_wait_s(response, body)
            await self.pause(wait_s, base_s=wait_s, cap_s=wait_s)
            return
        if headers.get("x-hubspot-ratelimit-daily-remaining") == "0":
            await self.pause(DAILY_WAIT_S, base_s=DAILY_WAIT_S, cap_s=DAILY_WAIT_S)
        # A window smaller than ours (HUBSPOT_REQUESTS_PER_10S set above the account's limit) shrinks ours.
        # X-HubSpot-RateLimit-Remaining: 0 needs nothing: the window above admits no call until one leaves.
        try:
            allowed = int(headers.get("x-hubspot-ratelimit-max", ""))
        except ValueError:
            return
        if 0 < allowed < self.requests_per_10s:
            await self._redis.set(self.key("max"), allowed, ex=MAX_SEEN_TTL_S)
