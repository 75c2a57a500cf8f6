"""Log context: what a job's log lines carry (job id, source, module, record id, rule, action), in a contextvar.

The worker sets it when arq starts a job (from the job id, `from_job_id`), the job sets it again from its
event once read, and each action adds its rule and action around its run. crmflow's log formatters
(crmflow/logs.py) add it to every record, so that a line logged anywhere below a job (a CRM client, an
action, arq's own start and end lines) names the job without its message spelling it out. Each arq job runs
in a task of its own, and a task starts with a copy of its parent's context, so no job sees another's.

The fields are identifiers only: never a record's values (see crmflow/logs.py on personal data).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

# Every field a log line may carry, in the order they are shown.
FIELDS = ("job_id", "source", "module", "record_id", "rule", "action")

_EMPTY: Mapping[str, str] = MappingProxyType({})
_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("crmflow_log_context", default=_EMPTY)


def current() -> Mapping[str, str]:
    """The fields set for the code running now (empty outside any job)."""
    return _CONTEXT.get()


def _merged(fields: Mapping[str, str | None]) -> Mapping[str, str]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"not log context fields: {', '.join(sorted(unknown))}")
    values = {**_CONTEXT.get(), **{name: str(value) for name, value in fields.items() if value is not None}}
    return MappingProxyType({name: values[name] for name in FIELDS if name in values})


def bind(**fields: str | None) -> None:
    """Add `fields` (None: left as they are) for the rest of the current task: for arq's job-start hook."""
    _CONTEXT.set(_merged(fields))


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add `fields` (None: left as they are) to every log line inside the block."""
    token = _CONTEXT.set(_merged(fields))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def from_job_id(job_id: str) -> dict[str, str]:
    """The fields a job id tells before its arguments are read. Pure.

    Job ids are built by workers/contract.py (`ChangeEvent.job_id`, `action_job_id`) as
    source:module:record_id:operation:notified_at_ms[...]; an id of another shape gives only the job id.
    """
    parts = job_id.split(":")
    if len(parts) < 5 or not all(parts[:3]):
        return {"job_id": job_id}
    return {"job_id": job_id, "source": parts[0], "module": parts[1], "record_id": parts[2]}
