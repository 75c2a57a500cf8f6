"""The queue contract between receiver and workers: the ChangeEvent job, its name, its id and its codec. Pure."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from workers.keys import QUEUE_NAME

__all__ = ["PROCESS_CHANGE", "QUEUE_NAME", "REPLAY_ACTION", "ChangeEvent", "action_job_id", "dumps", "loads"]

# Jobs: process_change(event) for every notification (and replayed job letters); replay_action(event,
# action_replay) runs one failed action again, as `crmflow dlq replay` queues it for an action letter.
PROCESS_CHANGE = "process_change"
REPLAY_ACTION = "replay_action"

Operation = Literal["insert", "update", "delete"]
# What queued the job: a CRM's notification (the receiver, or a dead letter replayed) or a reconciliation sweep
# (workers/sweep.py), which found the record in the CRM's listing of records modified in a window.
Origin = Literal["notification", "sweep"]
# A source's name as registered in workers/sources/ ("zoho", "hubspot"); which (source, module) pairs the
# workers can fetch and act on is the registry's to say, so a new CRM needs no change here.
SourceName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]


class ChangeEvent(BaseModel):
    """One record changed in one CRM: the only message that crosses the queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: SourceName
    module: str = Field(min_length=1, max_length=100)
    record_id: str = Field(min_length=1, max_length=64)
    operation: Operation
    changed_fields: tuple[str, ...] = ()
    # When the sender says the change happened or was notified (Zoho: server_time; HubSpot: the latest
    # occurredAt of the coalesced events), epoch milliseconds.
    notified_at_ms: int = Field(ge=0)
    # Where it came from inside the CRM: Zoho's watch channel, HubSpot's portal (account) id.
    channel_id: str | None = None
    # 0 for a notification; set by `crmflow dlq replay` to a fresh value (epoch milliseconds of the replay),
    # so that the replayed job gets an id of its own instead of being refused as a duplicate of the job that
    # failed, whose id arq keeps for WORKER_KEEP_RESULT_S.
    replay: int = Field(default=0, ge=0)
    # "sweep": found by a sweep, notified_at_ms being the record's modified time. Sweeps and notifications
    # of the same change may map to one job id; either way the job diffs against the last snapshot, so a
    # change handled once is not handled again.
    origin: Origin = "notification"
    # A sweep's window start (epoch ms): the record was listed as modified at or after it. A record crmflow has
    # never seen is then taken to have changed only in what it says happened since (workers/fetch.py
    # previous_values): an old reschedule it still describes is not this change. None for a notification.
    since_ms: int | None = Field(default=None, ge=0)
    # The dead letter a replay runs again (set by `crmflow dlq replay`), so that the replay's event log entry
    # links to it. None for everything else; not part of the job id.
    replay_of: str | None = Field(default=None, min_length=1, max_length=64)

    def job_id(self) -> str:
        """Deterministic arq job id: a redelivered notification maps to the same job and is not queued twice."""
        job_id = f"{self.source}:{self.module}:{self.record_id}:{self.operation}:{self.notified_at_ms}"
        # Only replays carry the suffix, so the ids of notifications are the same as before the field existed.
        return f"{job_id}:replay:{self.replay}" if self.replay else job_id

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A notification's job carries no `replay` or `origin` key, exactly as before the fields existed, so
        # workers that do not know them yet still accept it during a rolling deploy.
        data: dict[str, Any] = handler(self)
        if not self.replay:
            data.pop("replay", None)
        if self.origin == "notification":
            data.pop("origin", None)
        if self.since_ms is None:
            data.pop("since_ms", None)
        if self.replay_of is None:
            data.pop("replay_of", None)
        return data


def action_job_id(event: ChangeEvent, rule: str, action: str) -> str:
    """The job id of a replayed action: its (replayed) event's, the rule's name and the action's type."""
    return f"{event.job_id()}:{rule}:{action}"


def _fallback(obj: object) -> str:
    # arq stores a failed job's exception in its result; keep that readable instead of dropping the result.
    return repr(obj)


def dumps(obj: Any) -> bytes:
    """Serialize a job or a job result for Redis (JSON via orjson)."""
    return orjson.dumps(obj, default=_fallback)


def loads(data: bytes) -> Any:
    """Deserialize what `dumps` wrote."""
    return orjson.loads(data)
