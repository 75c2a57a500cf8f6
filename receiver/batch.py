"""Enqueue batching: the jobs of the requests that arrive together go to Redis in one enqueue script call.

Each webhook request hands its jobs to the app's EnqueueBatch (`await batch.enqueue(jobs, notified_by=...)`)
and gets back one outcome per job (workers/queue.py: queued, duplicate, coalesced, every delivery seen, or
which deliveries were seen) once Redis has acknowledged them, or QueueUnavailableError (503) when it did not.

How requests share a call. The first request to arrive starts the batch's drain task, which first runs at the
event loop's next turn, so every request that reached `enqueue` in the same turn is in the first call. One call
is in flight at a time: requests that arrive meanwhile wait for it and go together in the next call, so a
busy receiver makes fewer, larger calls rather than more. A call carries at most ENQUEUE_CHUNK jobs: a large
request (a callback naming 50,000 records) is cut into chunks as before, each in its own call, and a chunk of
it may share a call with other requests' jobs; a request that has had a chunk sent goes behind those waiting,
so a small request waits for at most one chunk of a large one. The last-notification key of each source
notified goes with the call that carries the request's first jobs (or with any call, for a request that has
nothing to queue).

What a failure does. When Redis refuses writes (over maxmemory) it refuses the script at its first write,
before anything is written; a call whose reply was lost (timed out) or that an error stopped halfway may have
written some of its jobs, each whole (workers/queue.py), which a retry finds as duplicates. Either way every
request with jobs in a failed call is answered 503, whatever its other calls did; its chunks not yet sent are
dropped. A request answered 503 may thus have had earlier chunks queued (a large callback): those stay queued,
and the sender's retry maps to the same job ids, which are then duplicates, while the rest are queued; nothing
it named is lost. A HubSpot delivery is marked seen only by the call that queued (or folded, or found the
duplicate of) its job, so a retry after a failed call is never taken for a redelivery. Requests not in the
failed call are not affected: the next call is tried for them (and fails the same way if Redis is still away).
A request is answered 200 only after every call carrying its jobs succeeded.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from arq.connections import ArqRedis

from workers.errors import QueueUnavailableError
from workers.queue import ENQUEUE_CHUNK, Job, Outcome, enqueue_script, run_enqueue


@dataclass(eq=False)
class _Request:
    """One request's jobs on their way: how far they were sent, the outcomes so far, its answer."""

    jobs: Sequence[Job]
    notified_by: str | None
    answer: asyncio.Future[list[Outcome]]
    outcomes: list[Outcome] = field(default_factory=list)
    sent: int = 0  # jobs handed to a call so far
    notified: bool = False  # its source's last notification went with a call
    calls: int = 0  # calls in flight or done carrying its jobs, not yet answered

    def finish(self, error: BaseException | None = None) -> None:
        if self.answer.done():  # the request was cancelled meanwhile: nobody waits for it
            return
        if error is not None:
            self.answer.set_exception(error)
        else:
            self.answer.set_result(self.outcomes)


@dataclass(eq=False)
class _Part:
    """The slice of one request's jobs that a call carries."""

    request: _Request
    start: int
    stop: int


class EnqueueBatch:
    """The receiver's queue writer: coalesces concurrent requests' enqueues into one script call at a time.

    One per app (receiver/app.py); it needs no event loop until the first request, and `aclose` waits for the
    call in flight at shutdown.
    """

    def __init__(self, redis: ArqRedis, *, chunk: int = ENQUEUE_CHUNK) -> None:
        self._script = enqueue_script(redis)
        self._chunk = chunk
        self._pending: deque[_Request] = deque()  # not started, in order of arrival
        self._continuing: deque[_Request] = deque()  # chunks sent, more left
        self._drain: asyncio.Task[None] | None = None
        self.calls = 0  # script calls made (for tests and curiosity)

    async def enqueue(self, jobs: Sequence[Job], *, notified_by: str | None = None) -> list[Outcome]:
        """Queue `jobs` (see workers/queue.py for each Outcome, in order); `notified_by`: the webhook's source,
        whose last notification is recorded in the same call. Raises QueueUnavailableError."""
        if not jobs and notified_by is None:
            return []
        loop = asyncio.get_running_loop()
        request = _Request(jobs, notified_by, loop.create_future())
        self._pending.append(request)
        if self._drain is None:
            self._drain = loop.create_task(self._drain_pending())
        return await request.answer

    async def aclose(self) -> None:
        """Wait until every request handed in has its answer."""
        if self._drain is not None:
            await asyncio.shield(self._drain)

    async def _drain_pending(self) -> None:
        try:
            while self._pending or self._continuing:
                await self._call(self._take())
        except BaseException:  # cancelled at shutdown: no request may wait forever
            for request in (*self._pending, *self._continuing):
                request.finish(QueueUnavailableError("the receiver is stopping"))
            self._pending.clear()
            self._continuing.clear()
            raise
        finally:
            self._drain = None

    def _take(self) -> list[_Part]:
        """The next call's parts, up to the chunk cap of jobs (a request with nothing to queue always fits): first
        the requests not yet started, in order of arrival, then those with chunks left, which go to the back."""
        parts: list[_Part] = []
        room = self._chunk
        waiting: deque[_Request] = deque()
        unfinished: deque[_Request] = deque()
        for queue in (self._pending, self._continuing):
            while queue:
                request = queue.popleft()
                left = len(request.jobs) - request.sent
                if left and not room:
                    (unfinished if request.sent else waiting).append(request)
                    continue
                take = min(left, room)
                parts.append(_Part(request, request.sent, request.sent + take))
                request.sent += take
                request.calls += 1
                room -= take
                if request.sent < len(request.jobs):
                    unfinished.append(request)
        self._pending, self._continuing = waiting, unfinished
        return parts

    async def _call(self, parts: list[_Part]) -> None:
        jobs = [job for part in parts for job in part.request.jobs[part.start : part.stop]]
        sources = []
        for part in parts:
            request = part.request
            if request.notified_by is not None and not request.notified:
                request.notified = True
                if request.notified_by not in sources:
                    sources.append(request.notified_by)
        self.calls += 1
        try:
            outcomes = await run_enqueue(self._script, jobs, notified_by=sources)
        except BaseException as exc:
            # QueueUnavailableError: a 503 for each; anything else (a bug) reaches each request as it is; a
            # cancellation (shutdown) ends the drain after failing them.
            error = exc if isinstance(exc, Exception) else QueueUnavailableError("the receiver is stopping")
            for part in parts:
                self._fail(part.request, error)
            if not isinstance(exc, Exception):
                raise
            return
        try:
            self._answer(parts, outcomes)
        except Exception as exc:  # a bug in the bookkeeping: no request of the call may wait for ever
            for part in parts:
                self._fail(part.request, exc)
            raise

    @staticmethod
    def _answer(parts: list[_Part], outcomes: Sequence[Outcome]) -> None:
        """Hand each part its outcomes; answer the requests whose every call has come back."""
        position = 0
        for part in parts:
            request = part.request
            count = part.stop - part.start
            request.outcomes[part.start : part.stop] = outcomes[position : position + count]
            position += count
            request.calls -= 1
            if request.sent == len(request.jobs) and not request.calls:
                request.finish()

    def _fail(self, request: _Request, error: Exception) -> None:
        if request in self._continuing:
            self._continuing.remove(request)  # its chunks not yet sent are dropped with it
        request.finish(error)
