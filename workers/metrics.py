"""Metrics: every Prometheus metric crmflow exposes, its labels' vocabularies, and the text they are served as.

The receiver serves them on `GET /metrics`, each worker on WORKER_METRICS_PORT (workers/metrics_server.py).
Counters and histograms live in this process's registry and cost no Redis command; the gauges about shared
state (queue, dead letters, channels, sweeps) are read from Redis when scraped (workers/metrics_scrape.py).

Every label value comes from a fixed set (or from the configuration: rule names, channel ids, modules), never
from a request or a record: a record id or a URL with one in it would make a new series per record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "REGISTRY"]

# crmflow's own registry: no process or platform collectors, so the receiver and workers expose the same set.
REGISTRY = CollectorRegistry(auto_describe=True)
# No `*_created` series beside every counter and histogram: they double the output and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- Receiver -------------------------------------------------------------------------------------------
# One per webhook request on a webhook route: accepted (something was queued or folded into a queued job),
# duplicate (every record in it was already queued), ignored (nothing in it is served), or why it was refused
# (REJECTIONS).
WEBHOOKS = Counter(
    "crmflow_webhooks",
    "Webhook requests received, by source and outcome (accepted, duplicate, ignored, or the rejection reason).",
    ["source", "outcome"],
    registry=REGISTRY,
)
# The records in the accepted requests: queued, coalesced (folded into the record's queued job), duplicate,
# ignored. A request of 100 records counts once above and 100 times here.
WEBHOOK_EVENTS = Counter(
    "crmflow_webhook_events",
    "Records named by accepted webhook requests, by source and outcome (queued, coalesced, duplicate, ignored).",
    ["source", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_SOURCES = ("zoho", "hubspot")
# The receiver's refusals (receiver/errors.py codes, and the app's and the request limit's own answers).
REJECTIONS = frozenset(
    {
        "unsupported_media_type",
        "payload_too_large",
        "headers_too_large",
        "request_timeout",
        "malformed_request",
        "malformed_json",
        "unauthenticated",
        "invalid_payload",
        "queue_unavailable",
        "client_disconnected",
        "overloaded",
        "method_not_allowed",
        "not_found",
    }
)

# --- Workers --------------------------------------------------------------------------------------------
JOBS = Counter(
    "crmflow_jobs",
    "Job runs ended, by source and outcome (processed, retried, dead_lettered).",
    ["source", "outcome"],
    registry=REGISTRY,
)
JOB_OUTCOMES = ("processed", "retried", "dead_lettered")
# An action's outcome: what it did (created, found_in_crm: the CRM had it already, already_logged: the ledger
# knew it, delivered: a notify's POST got a 2xx, none: nothing to do, superseded: an update_record retry found a
# person's newer value and wrote nothing), dead_lettered (a final failure), or
# failed (a transient failure ended the try; the job is retried, or dead-lettered once out of tries, which
# crmflow_jobs_total counts).
ACTIONS = Counter(
    "crmflow_actions",
    "Actions run, by rule, action and outcome (created, found_in_crm, already_logged, delivered, none, "
    "superseded, dead_lettered, failed).",
    ["rule", "action", "outcome"],
    registry=REGISTRY,
)
CRM_REQUESTS = Counter(
    "crmflow_crm_requests",
    "HTTP requests sent to a CRM, by source, operation and HTTP status (timeout or connection_error if none).",
    ["source", "operation", "status"],
    registry=REGISTRY,
)
CRM_REQUEST_DURATION = Histogram(
    "crmflow_crm_request_duration_seconds",
    "Time from sending a CRM request to its answer (waits for the CRM's limits excluded), by source and operation.",
    ["source", "operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
# What `operation` may be: one name per kind of CRM call (workers/crm/*.py pass theirs to responses.send).
CRM_OPERATIONS = frozenset(
    {
        # both
        "get_record",
        "update_record",
        "create_note",
        # Zoho
        "list_history",
        "create_history",
        "list_modified",
        "list_channels",
        "enable_channels",
        "update_channels",
        "disable_channels",
        "refresh_token",
        "list_notes",
        "get_fields",
        # HubSpot
        "batch_read_records",
        "search_modified",
        "get_association_labels",
        "list_note_associations",
        "batch_read_notes",
        "get_properties",
    }
)
# Statuses of a request that got no HTTP answer.
NO_ANSWER = {"TIMEOUT": "timeout", "CONNECTION": "connection_error"}
# The notify action's POSTs (workers/notify/delivery.py), by the answer's class: 2xx, 3xx (never followed), 4xx,
# 5xx, or timeout, connection_error, not_sent (a URL that cannot be requested). Never by URL or host.
NOTIFY_REQUESTS = Counter(
    "crmflow_notify_requests",
    "Webhook POSTs sent by notify actions, by status class (2xx, 3xx, 4xx, 5xx, timeout, connection_error, not_sent).",
    ["status"],
    registry=REGISTRY,
)
NOTIFY_STATUSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "connection_error", "not_sent")
NOTIFY_REQUEST_DURATION = Histogram(
    "crmflow_notify_request_duration_seconds",
    "Time from sending a notify action's POST to the end of reading its answer (or giving up).",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
EVENT_LAG = Histogram(
    "crmflow_event_lag_seconds",
    "Time from the CRM's own time of a change to crmflow's effect of it in a CRM (an action that wrote), by source.",
    ["source"],
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0),
    registry=REGISTRY,
)

# --- Shared state, read from Redis at scrape time (workers/metrics_scrape.py) ---------------------------
# Not in the registry: built for each scrape from what it read (shared_state_metrics), and left out when Redis
# did not answer, so that a stale value is never served as a current one.
QUEUE_DEPTH = "crmflow_queue_depth"
QUEUE_OLDEST_AGE = "crmflow_queue_oldest_age_seconds"
DEADLETTERS = "crmflow_deadletters"
CHANNEL_EXPIRY = "crmflow_zoho_channel_expiry_timestamp_seconds"
CHANNEL_FAILURES = "crmflow_zoho_channel_failures"
DUTY_LAST_COMPLETED = "crmflow_duty_last_completed_timestamp_seconds"
SWEEP_CURSOR = "crmflow_sweep_cursor_timestamp_seconds"
REDIS_UP = "crmflow_redis_up"


@dataclass(frozen=True)
class SharedState:
    """What one scrape read from Redis: the queue, the dead letters, the Zoho channels and the duties."""

    queue_depth: int
    # Epoch seconds the queue's first job was due (None: empty queue).
    first_due_s: float | None
    deadletters: int
    channel_expiry_s: Mapping[str, float] = field(default_factory=dict)
    channel_failures: int = 0
    # Duty name -> epoch seconds of its last successful run (a duty that never completed is absent).
    duty_completed_s: Mapping[str, float] = field(default_factory=dict)
    # (source, module) -> the sweep cursor, epoch seconds.
    sweep_cursor_s: Mapping[tuple[str, str], float] = field(default_factory=dict)


def shared_state_metrics(state: SharedState | None, now_s: float) -> list[Metric]:
    """The scrape-time gauges for `state`, or only crmflow_redis_up 0 when Redis did not answer (None)."""
    up = GaugeMetricFamily(REDIS_UP, "1 when this scrape read crmflow's shared state from Redis, else 0.")
    up.add_metric([], 1 if state is not None else 0)
    if state is None:
        return [up]
    oldest = max(now_s - state.first_due_s, 0.0) if state.first_due_s is not None else 0.0
    expiry = GaugeMetricFamily(
        CHANNEL_EXPIRY,
        "When each Zoho watch channel expires, as Zoho last granted or listed it (epoch seconds).",
        labels=["channel"],
    )
    for channel, at in sorted(state.channel_expiry_s.items()):
        expiry.add_metric([channel], at)
    duties = GaugeMetricFamily(
        DUTY_LAST_COMPLETED,
        "When a periodic duty (zoho-channels, sweep:<source>) last completed successfully (epoch seconds).",
        labels=["duty"],
    )
    for duty, at in sorted(state.duty_completed_s.items()):
        duties.add_metric([duty], at)
    cursors = GaugeMetricFamily(
        SWEEP_CURSOR,
        "Every record of the module modified before this time has been queued by a sweep (epoch seconds).",
        labels=["source", "module"],
    )
    for (source, module), at in sorted(state.sweep_cursor_s.items()):
        cursors.add_metric([source, module], at)
    return [
        up,
        GaugeMetricFamily(
            QUEUE_DEPTH, "Jobs in the queue: waiting, deferred for a retry, or running.", state.queue_depth
        ),
        GaugeMetricFamily(
            QUEUE_OLDEST_AGE,
            "How long the queue's most overdue job has been due (0 when the queue is empty or none is due yet).",
            oldest,
        ),
        GaugeMetricFamily(DEADLETTERS, "Dead letters kept (crmflow dlq list).", state.deadletters),
        GaugeMetricFamily(
            CHANNEL_FAILURES,
            "Zoho watch channels whose last upkeep failed (crmflow zoho channels).",
            state.channel_failures,
        ),
        expiry,
        duties,
        cursors,
    ]


class _Families:
    """A collector of ready-made metric families (for one exposition)."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


@cache
def _webhooks(source: str, outcome: str) -> Counter:
    """The crmflow_webhooks child of a source and outcome, looked up once (labels() takes a lock and builds a
    key per call; both label values come from fixed sets, so the cache stays small). Never cleared: no
    series of crmflow's is ever removed."""
    return WEBHOOKS.labels(source, outcome)


@cache
def _webhook_events(source: str, outcome: str) -> Counter:
    """The crmflow_webhook_events child of a source and outcome, looked up once (as _webhooks)."""
    return WEBHOOK_EVENTS.labels(source, outcome)


def declare_webhook_sources(served: Iterable[str]) -> None:
    """Start each served source's accepted, duplicate and ignored series at 0, so that a source that never
    sends is a flat 0 (an alert can see it), not a series that does not exist."""
    for source in served:
        for outcome in ("accepted", "duplicate", "ignored"):
            _webhooks(source, outcome)


def webhook_source(path: str) -> str | None:
    """The source a webhook path belongs to (None for any other path): a bounded label, never the raw path."""
    for source in WEBHOOK_SOURCES:
        if path in (f"/webhooks/{source}", f"/webhooks/{source}/"):
            return source
    return None


def webhook_outcome(queued: int, duplicates: int) -> str:
    """An accepted request's outcome: accepted when it queued anything, else duplicate, else ignored."""
    if queued:
        return "accepted"
    return "duplicate" if duplicates else "ignored"


def count_webhook(source: str, queued: int, coalesced: int, duplicates: int, ignored: int) -> None:
    """Count one accepted webhook request and the records it named."""
    _webhooks(source, webhook_outcome(queued + coalesced, duplicates)).inc()
    for outcome, count in (
        ("queued", queued),
        ("coalesced", coalesced),
        ("duplicate", duplicates),
        ("ignored", ignored),
    ):
        if count:
            _webhook_events(source, outcome).inc(count)


def count_rejection(path: str, code: str) -> None:
    """Count a refused request on a webhook route under its reason; other paths and unknown codes are not counted
    as webhooks (an unknown code is counted as `other`, so the label stays bounded)."""
    source = webhook_source(path)
    if source is not None:
        _webhooks(source, code if code in REJECTIONS else "other").inc()


def crm_status(status_code: int | None, error_code: str | None = None) -> str:
    """The `status` label of a CRM request: its HTTP status, or why there was none."""
    if status_code is not None:
        return str(status_code)
    return NO_ANSWER.get(error_code or "", "error")


def count_crm_request(source: str, operation: str, status: str, duration_s: float) -> None:
    """Count and time one request sent to a CRM."""
    CRM_REQUESTS.labels(source, operation, status).inc()
    CRM_REQUEST_DURATION.labels(source, operation).observe(duration_s)


def count_notify_request(status: str, duration_s: float) -> None:
    """Count and time one notify POST; `status` is one of NOTIFY_STATUSES (anything else counts as not_sent)."""
    NOTIFY_REQUESTS.labels(status if status in NOTIFY_STATUSES else "not_sent").inc()
    NOTIFY_REQUEST_DURATION.observe(duration_s)


def event_time(notified_at: datetime, record_modified: datetime | None) -> datetime:
    """The CRM's own time of the change a job acted on: the earlier of the time its event carries and the
    record's modified time as fetched (docs/operations.md, "Metrics").

    HubSpot's event carries occurredAt, when the change happened; the record's hs_lastmodifieddate is never
    earlier, so occurredAt it is. Zoho's notification carries only server_time, when Zoho sent it; the
    record's Modified_Time is when the change happened, unless the record changed again after the
    notification (then server_time, the earlier, bounds it). A sweep's event carries the Modified_Time the
    listing gave.
    """
    if record_modified is None:
        return notified_at
    return min(notified_at, record_modified)


def observe_lag(source: str, happened: datetime, effect: datetime) -> None:
    """One effect in a CRM, `effect - happened` after the change (a clock skew below zero counts as 0)."""
    EVENT_LAG.labels(source).observe(max((effect - happened).total_seconds(), 0.0))


def exposition(state: SharedState | None, now_s: float) -> bytes:
    """The process's metrics and the shared state's gauges (`state`: None when Redis did not answer), in
    Prometheus's text format."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Families(shared_state_metrics(state, now_s)))
    return generate_latest(REGISTRY) + generate_latest(scraped)
