"""Job notes: what the running job decided and did, noted as it goes (a context variable) for its event log entry.

The notes are the job's own: arq runs every job in a task of its own, which sees only the notes its job set.
The CRM clients note every call's time here (workers/crm/responses.py `send`) without knowing the job, and
the job notes its change and the dead letters it keeps. Nothing is noted when no job set notes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from workers.diff import Change


@dataclass
class JobNotes:
    """One try of a job: when it started, the change it found, the letters it kept and its time in CRM calls."""

    started_at: datetime
    change: Change | None = None
    dead_letters: list[str] = field(default_factory=list)
    crm_s: float = 0.0
    crm_calls: int = 0


_current: ContextVar[JobNotes | None] = ContextVar("crmflow_job_notes", default=None)


@contextmanager
def noting(started_at: datetime) -> Iterator[JobNotes]:
    """Fresh notes for the job running in this task, until the block ends."""
    notes = JobNotes(started_at)
    token = _current.set(notes)
    try:
        yield notes
    finally:
        _current.reset(token)


def current() -> JobNotes | None:
    """The running job's notes, or None outside a job."""
    return _current.get()


def note_change(change: Change) -> None:
    notes = _current.get()
    if notes is not None:
        notes.change = change


def note_dead_letter(letter_id: str) -> None:
    notes = _current.get()
    if notes is not None and letter_id not in notes.dead_letters:
        notes.dead_letters.append(letter_id)


def note_crm_call(seconds: float) -> None:
    notes = _current.get()
    if notes is not None:
        notes.crm_s += seconds
        notes.crm_calls += 1
