"""Job notes: each job's task sees only its own notes; nothing is noted outside a job."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from workers import job_notes

T0 = datetime(2026, 11, 30, tzinfo=UTC)


async def test_concurrent_jobs_note_their_own_crm_calls_and_letters() -> None:
    async def job(calls: int, letter: str) -> job_notes.JobNotes:
        with job_notes.noting(T0) as notes:
            for _ in range(calls):
                await asyncio.sleep(0)
                job_notes.note_crm_call(0.5)
            job_notes.note_dead_letter(letter)
            job_notes.note_dead_letter(letter)
            return notes

    one, two = await asyncio.gather(job(1, "a"), job(3, "b"))

    assert (one.crm_calls, one.crm_s, one.dead_letters) == (1, 0.5, ["a"])
    assert (two.crm_calls, two.crm_s, two.dead_letters) == (3, 1.5, ["b"])
    assert job_notes.current() is None


def test_outside_a_job_nothing_is_noted() -> None:
    job_notes.note_crm_call(1.0)
    job_notes.note_dead_letter("x")
    assert job_notes.current() is None
