"""Redis keys: every key crmflow writes, what it holds and how long it lives (the operator's inventory). Pure.

Nothing else in crmflow spells a key. Keys that arq itself writes for our queue are listed too, for the
operator's sake, though arq builds them.

| key                                     | holds                                  | lives                       |
|-----------------------------------------|----------------------------------------|-----------------------------|
| crmflow:queue                           | sorted set: job ids by when due (ms)   | while jobs wait             |
| arq:job:<job id>                        | a queued job (written by arq)          | until run; 1 day at most    |
| arq:in-progress:<job id>                | a job being run (arq)                  | job timeout + 10 s          |
| arq:retry:<job id>                      | how often arq ran the job (arq)        | 1 day                       |
| arq:result:<job id>                     | the job's result; refuses the same id  | WORKER_KEEP_RESULT_S        |
| crmflow:ready-probe                     | /readyz's write test                   | READY_PROBE_TTL_S (60 s)    |
| crmflow:last-notification:<source>      | epoch ms: when the receiver last       | LAST_NOTIFICATION_TTL_S     |
|                                         | accepted a notification from source    | (35 d) from the last one    |
| crmflow:seen:<source>:<delivery key>    | a webhook event already queued         | SEEN_TTL_S (26 h)           |
| crmflow:lock:<source>:<module>:<id>     | the record's lock while a job runs     | job timeout + 10 s          |
| crmflow:snapshot:<source>:<module>:<id> | the record's last state seen           | SNAPSHOT_TTL_S (180 d)      |
| crmflow:ledger:<digest>                 | an effect pending or done in a CRM     | LEDGER_TTL_S (30 d) [1]     |
| crmflow:pending:<source>:<module>:<id>  | set: the record's ledger keys that may | LEDGER_TTL_S (30 d), from   |
|                                         | still be pending                       | the last key added          |
| crmflow:ratelimited:<job id>            | runs spent waiting on rate limits and  | RATE_LIMITED_TTL_S (2 d)    |
|                                         | for the record's lock                  |                             |
| crmflow:lockwait:<job id>               | epoch ms: when the job first found its | RATE_LIMITED_TTL_S (2 d);   |
|                                         | record's lock taken                    | gone once it takes the lock |
| crmflow:own-writes:<source>:<module>:   | hash: field -> JSON value crmflow wrote| OWN_WRITES_TTL_S (1 d) from |
|   <id>                                  | to the record (workers/own_writes.py)  | the last write              |
| crmflow:deadletters                     | sorted set: letter ids by last failure | trimmed to the retention    |
| crmflow:deadletter:<id>                 | one dead letter                        | DEADLETTER_RETENTION (14 d) |
| crmflow:zoho:token:<account>:<creds>    | JSON: the shared Zoho access token of  | the token's lifetime        |
|                                         | these credentials [2]                  |                             |
| crmflow:zoho:token:<account>:lock       | held by the worker refreshing it       | HTTP timeout + 10 s         |
| crmflow:zoho:token:<account>:refreshes  | refreshes in the current window        | ZOHO_REFRESH_WINDOW_S       |
| crmflow:zoho:channel-failures           | hash: channel id -> why the last try   | kept; a channel's entry goes|
|                                         | to keep that watch channel failed      | once it is kept again       |
| crmflow:rejections:<source>             | hash: webhooks the receiver refused    | REJECTIONS_TTL_S (7 d) from |
|                                         | (401) and when, per setting at fault   | the last one                |
| crmflow:zoho:channel-expiry            | hash: channel id -> its expiry as Zoho | kept; rewritten by every    |
|                                         | last granted or listed (epoch s)       | upkeep; for /metrics        |
| crmflow:queued:<source>:<module>:<id>   | hash: the record's queued job, and the | until the job starts; 1 day |
|                                         | events coalesced into it (queue.py)    | at most                     |
| crmflow:coalesced:<job id>              | hash: what coalesced events added to a | 1 day from queueing         |
|                                         | started job, read by its every try     |                             |
| crmflow:limits:<source>:<account>:slots | sorted set: Zoho calls in flight, by   | CRM_HTTP_TIMEOUT_S x 2 + 5  |
|                                         | lease expiry (crash-safe slots)        | s from the last call        |
| crmflow:limits:<source>:<account>:heavy | the same, for Zoho's heavy calls       | the same                    |
| crmflow:limits:<source>:<account>:window| sorted set: HubSpot calls in the last  | 70 s from the last call     |
|                                         | 10 s, by when they ended               |                             |
| crmflow:limits:<source>:<account>:search| the same, HubSpot search calls in 1 s  | 70 s from the last call     |
| crmflow:limits:<source>:<account>:pause | every worker waits while it exists     | the pause (after a 429)     |
| crmflow:limits:<source>:<account>:      | 429 pauses with no success between     | 10 min after the last 429;  |
|   strikes                               | (Zoho's back-off doubles with each)    | gone at the next success    |
| crmflow:limits:<source>:<account>:max   | HubSpot's X-HubSpot-RateLimit-Max when | 1 day                       |
|                                         | below HUBSPOT_REQUESTS_PER_10S         |                             |
| crmflow:crm-calls:<source>:<YYYY-MM-DD> | hash: CRM calls that day (UTC) by kind,| CRM_CALLS_TTL_S (35 d)      |
|                                         | 429s, coalesced events                 |                             |
| crmflow:duty:<name>:lease               | the worker whose turn it is to run the | the duty's interval         |
|                                         | duty (channel upkeep, sweep)           |                             |
| crmflow:duty:<name>:running             | held while a run of the duty lasts     | renewed; RUNNING_TTL_S 30 s |
| crmflow:duty:<name>:state               | hash: the duty's last run and outcome, | kept                        |
|                                         | and when it last succeeded             |                             |
| crmflow:sweep:<source>:<module>:cursor  | epoch ms: every record modified before | kept                        |
|                                         | it is queued (where the last sweep of  |                             |
|                                         | the module ended)                      |                             |
| crmflow:sweep:<source>:<module>:        | JSON: the cursor whose window is too   | kept; goes once the cursor  |
|   too-large                             | large to list, the error sweeps skip on| moves or goes               |
| crmflow:fields:<source>:<module>        | JSON: the CRM's own field list of the  | FIELD_LIST_TTL_S (1 day)    |
|                                         | module, custom fields included         | from when it was read       |
|                                         | (workers/field_lists.py)               |                             |
| crmflow:heartbeat:<worker id>           | JSON: a live worker process's facts    | HEARTBEAT_TTL_S (5 s) from  |
|                                         | (workers/heartbeat.py)                 | its last beat; deleted on a |
|                                         |                                        | clean stop                  |
| crmflow:heartbeats                      | sorted set: worker ids by the Redis    | HEARTBEAT_TTL_S from the    |
|                                         | time (ms) of their last beat (index of | last beat; older entries go |
|                                         | the heartbeat keys)                    | at each beat                |
| crmflow:events                          | stream: the event log, one entry per   | EVENT_LOG_MAX_AGE_S (7 d),  |
|                                         | finished job (workers/eventlog.py)     | EVENT_LOG_MAX_ENTRIES (100k)|
| crmflow:events:record:<record id>       | sorted set: the ids of the record's    | EVENT_LOG_MAX_AGE_S from    |
|                                         | entries in the event log, by time      | its last entry              |
| crmflow:console:session:<id>            | a console login (console/auth.py)      | CONSOLE_SESSION_S (12 h);   |
|                                         |                                        | deleted at logout           |
| crmflow:test:paused:<checkpoint>        | a test-held job's process id           | until the test ends         |

[1] A pending entry goes at once when the CRM refuses the write that made it; one a dead letter names expires
a day after the letter and goes when the letter is purged (docs/dead-letters.md, "The ledger and personal data").
[2] <account>: the accounts URL and client id, hashed; <creds>: the client secret and refresh token, hashed, so
a token is used only by those holding the credentials it was issued to (`crmflow doctor --online` relies on it).
"""

from __future__ import annotations

from datetime import timedelta

from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix

PREFIX = "crmflow:"
DAY_S = 86_400

# --- The queue (arq's sorted set; arq adds arq:job:, arq:in-progress:, arq:retry: and arq:result: keys) --
QUEUE_NAME = f"{PREFIX}queue"
# Written by workers/queue.py in arq's format, so arq's own prefixes.
ARQ_JOB_PREFIX = job_key_prefix
ARQ_RESULT_PREFIX = result_key_prefix
ARQ_IN_PROGRESS_PREFIX = in_progress_key_prefix

# --- Receiver ------------------------------------------------------------------------------------------
# HubSpot retries a failed delivery up to 10 times over 24 hours; remember events a little longer.
SEEN_TTL_S = 26 * 3600


# Written by the receiver's /readyz: ready means Redis takes writes, not merely that it answers.
READY_PROBE = f"{PREFIX}ready-probe"
READY_PROBE_TTL_S = 60


# When the receiver last accepted a notification from a source (`crmflow status`); written by the enqueue script
# (workers/queue.py), so it costs the request no round trip of its own. A source silent this long is forgotten.
LAST_NOTIFICATION_PREFIX = f"{PREFIX}last-notification:"
LAST_NOTIFICATION_PATTERN = f"{LAST_NOTIFICATION_PREFIX}*"
LAST_NOTIFICATION_TTL_S = 35 * DAY_S


def last_notification(source: str) -> str:
    """Epoch ms: when the receiver last accepted a notification from `source`."""
    return f"{LAST_NOTIFICATION_PREFIX}{source}"


def seen(source: str, delivery_key: str) -> str:
    """A webhook event (by its delivery key) that was already queued."""
    return f"{PREFIX}seen:{source}:{delivery_key}"


# Written on the receiver's reject path only (receiver/rejections.py); read by `crmflow doctor --online`.
REJECTIONS_TTL_S = 7 * DAY_S


def webhook_rejections(source: str) -> str:
    """A hash: the webhooks of `source` the receiver refused with 401 (count, last_ms, last_reason, and per
    setting a mismatch points at, `<SETTING>:last_ms` and `<SETTING>:count`)."""
    return f"{PREFIX}rejections:{source}"


# --- Worker: per record ---------------------------------------------------------------------------------
# A record untouched for this long is treated as seen for the first time again.
SNAPSHOT_TTL_S = 180 * DAY_S
# Longer than any retry window (max tries x retry cap is well under a day) and than arq's job expiry.
LEDGER_TTL_S = 30 * DAY_S
RATE_LIMITED_TTL_S = 2 * DAY_S
# Far longer than a CRM takes to notify a write (seconds), short enough that a forgotten entry soon goes.
OWN_WRITES_TTL_S = DAY_S


def lock(source: str, module: str, record_id: str) -> str:
    """The record's lock: one job at a time per record (its timeout is set by the worker)."""
    return f"{PREFIX}lock:{source}:{module}:{record_id}"


def snapshot(source: str, module: str, record_id: str) -> str:
    """The record's last state seen, what the next change is diffed against."""
    return f"{PREFIX}snapshot:{source}:{module}:{record_id}"


def own_writes(source: str, module: str, record_id: str) -> str:
    """What crmflow wrote to the record's fields (a hash), so that its own change fires no rule again."""
    return f"{PREFIX}own-writes:{source}:{module}:{record_id}"


def ledger(digest: str) -> str:
    """One effect applied (or about to be) in a CRM, by a digest of what identifies it."""
    return f"{PREFIX}ledger:{digest}"


def pending_effects(source: str, module: str, record_id: str) -> str:
    """The ledger keys of the record's effects that may still be pending (a set): ledger keys are digests."""
    return f"{PREFIX}pending:{source}:{module}:{record_id}"


def queued_marker(source: str, module: str, record_id: str) -> str:
    """The record's job that is queued and not yet started, and what events coalesced into it added."""
    return f"{PREFIX}queued:{source}:{module}:{record_id}"


def coalesced(job_id: str) -> str:
    """What coalesced events added to a job, moved here from the record's marker when the job started."""
    return f"{PREFIX}coalesced:{job_id}"


def rate_limited(job_id: str) -> str:
    """How many runs of a job were spent waiting out rate limits or for its record's lock (not tries)."""
    return f"{PREFIX}ratelimited:{job_id}"


def lock_wait(job_id: str) -> str:
    """Epoch ms: when the job first found its record's lock taken (workers/record_lock.py); gone once it has it."""
    return f"{PREFIX}lockwait:{job_id}"


# --- Dead letters ---------------------------------------------------------------------------------------
DEADLETTER_INDEX = f"{PREFIX}deadletters"
DEADLETTER_PREFIX = f"{PREFIX}deadletter:"
# A letter is kept this long after its last failure (its key's TTL), and at most DEADLETTER_MAX of them.
DEADLETTER_RETENTION = timedelta(days=14)
DEADLETTER_MAX = 100_000


def deadletter(letter_id: str) -> str:
    """One dead letter."""
    return f"{DEADLETTER_PREFIX}{letter_id}"


# --- CRM accounts ---------------------------------------------------------------------------------------
ZOHO_REFRESH_WINDOW_S = 600
# Zoho watch channels that could not be kept (workers/channel_upkeep.py): channel id -> JSON {reason, at, by}.
ZOHO_CHANNEL_FAILURES = f"{PREFIX}zoho:channel-failures"
# Each kept Zoho watch channel's expiry (epoch seconds, as text), for the metrics (workers/metrics_scrape.py).
ZOHO_CHANNEL_EXPIRY = f"{PREFIX}zoho:channel-expiry"
CRM_CALLS_TTL_S = 35 * DAY_S


def crm_limit(source: str, account: str, part: str) -> str:
    """One part of a CRM account's shared limiter (workers/crm/limits.py): slots, heavy, window, search,
    pause, strikes or max."""
    return f"{PREFIX}limits:{source}:{account}:{part}"


def crm_calls(source: str, day: str) -> str:
    """A hash: the CRM calls made to `source` on `day` (YYYY-MM-DD, UTC), by kind, with 429s and coalesced events."""
    return f"{PREFIX}crm-calls:{source}:{day}"


def zoho_token(account: str) -> str:
    """The root of one Zoho account's token keys (the account: accounts URL and client id, hashed)."""
    return f"{PREFIX}zoho:token:{account}"


def zoho_token_for(account: str, credentials: str) -> str:
    """The access token all workers share for one Zoho account, issued to these credentials (client secret and
    refresh token, hashed): other credentials, e.g. a mistyped secret, never get it."""
    return f"{zoho_token(account)}:{credentials}"


def zoho_token_lock(account: str) -> str:
    """Held by the one worker refreshing the account's token."""
    return f"{zoho_token(account)}:lock"


def zoho_refreshes(account: str) -> str:
    """Token refreshes spent in the current ZOHO_REFRESH_WINDOW_S window."""
    return f"{zoho_token(account)}:refreshes"


# --- Duties (workers/duties.py) ------------------------------------------------------------------------
DUTY_PREFIX = f"{PREFIX}duty:"
DUTY_STATE_SUFFIX = ":state"


def duty_lease(name: str) -> str:
    """Held (SET NX) by the worker that runs duty `name` this interval; expires with the interval."""
    return f"{PREFIX}duty:{name}:lease"


def duty_running(name: str) -> str:
    """Held while a run of duty `name` lasts, renewed by its owner, so that no two runs overlap."""
    return f"{PREFIX}duty:{name}:running"


def duty_state(name: str) -> str:
    """A hash: the last run of duty `name` (state, owner, started_at, finished_at, summary, error)."""
    return f"{DUTY_PREFIX}{name}{DUTY_STATE_SUFFIX}"


DUTY_STATE_PATTERN = duty_state("*")


# --- Worker heartbeats (workers/heartbeat.py) ----------------------------------------------------------
WORKER_HEARTBEAT_PREFIX = f"{PREFIX}heartbeat:"
WORKER_HEARTBEAT_PATTERN = f"{WORKER_HEARTBEAT_PREFIX}*"
# Sorted set: worker ids by the Redis time (ms) of their last beat, written with each beat; how readers find
# the heartbeat keys without scanning the keyspace.
WORKER_HEARTBEATS = f"{PREFIX}heartbeats"


def worker_heartbeat(worker_id: str) -> str:
    """One worker process's heartbeat: its facts as JSON, expiring a few seconds after its last beat."""
    return f"{WORKER_HEARTBEAT_PREFIX}{worker_id}"


# --- Reconciliation sweeps (workers/sweep.py) ----------------------------------------------------------
SWEEP_PREFIX = f"{PREFIX}sweep:"
SWEEP_CURSOR_SUFFIX = ":cursor"


def sweep_cursor(source: str, module: str) -> str:
    """Epoch ms up to which a sweep has queued every record of the module modified before it."""
    return f"{SWEEP_PREFIX}{source}:{module}{SWEEP_CURSOR_SUFFIX}"


SWEEP_CURSOR_PATTERN = sweep_cursor("*", "*")


FIELD_LIST_TTL_S = DAY_S


def field_list(source: str, module: str) -> str:
    """JSON: the field list the CRM reported for one of its modules, and when it was read."""
    return f"{PREFIX}fields:{source}:{module}"


def sweep_too_large(source: str, module: str) -> str:
    """JSON: the cursor whose window the CRM's listing cannot reach back to, and the error sweeps skip with."""
    return f"{PREFIX}sweep:{source}:{module}:too-large"


# --- Event log (workers/eventlog.py) -------------------------------------------------------------------
EVENT_LOG = f"{PREFIX}events"


def event_log_record(record_id: str) -> str:
    """The ids of one record's entries in the event log (a sorted set by time), for filtering by record."""
    return f"{PREFIX}events:record:{record_id}"


# --- The web console (console/auth.py) ----------------------------------------------------------------
def console_session(session_id: str) -> str:
    """One console login: present while the session lasts; logging out deletes it."""
    return f"{PREFIX}console:session:{session_id}"


# --- Tests ----------------------------------------------------------------------------------------------
def paused_at(point: str) -> str:
    """A job held at a named checkpoint, with the worker's process id (only when CRMFLOW_TEST_PAUSE_AT is set)."""
    return f"{PREFIX}test:paused:{point}"
