"""MISSED_RESCHEDULE letters never overlap a history row (issue 8, item 6), through a real worker and the sandbox.

The soak once ended with a letter covering 12-10 → 12-13 while Zoho had the row 12-11 → 12-12, written by an
earlier try whose answer was lost (its ledger entry still pending). An operator logging that letter by hand
would have written 12-11 → 12-12 twice. Here the same sequence is played deterministically: the answer to
the history POST is lost, and the record moves on before the job's retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from arq.connections import ArqRedis

from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.workers.harness import enqueue_change, run_worker
from workers.deadletters import MISSED_RESCHEDULE, DeadLetters
from workers.record import parse_datetime

HISTORY_PATH = "/crm/v7/Appointments_Rescheduled_History__s"
YEAR = datetime.now(UTC).year + 1


def december(day: int) -> datetime:
    return datetime(YEAR, 12, day, 9, 0, tzinfo=UTC)


def instant(value: str) -> datetime:
    moment = parse_datetime(value)
    assert moment is not None
    return moment


class Zoho:
    """The sandbox, driven as a Zoho user would, plus its control API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._headers: dict[str, str] = {}

    async def headers(self) -> dict[str, str]:
        if not self._headers:
            answer = await self.http.post("/oauth/v2/token", data=SandboxConfig().refresh_form())
            self._headers = {"Authorization": f"Zoho-oauthtoken {answer.json()['access_token']}"}
        return self._headers

    async def create(self, start: datetime) -> str:
        fields = {"Appointment_Name": "Missed reschedules", "Appointment_Start_Time": start.isoformat()}
        answer = await self.http.post("/_sandbox/appointments", json=fields)
        assert answer.status_code in (200, 201), answer.text
        return str(answer.json()["data"][0]["id"])

    async def reschedule(self, record_id: str, start: datetime) -> None:
        body = {"data": [{"id": record_id, "Appointment_Start_Time": start.isoformat()}]}
        answer = await self.http.put("/crm/v7/Appointments__s", json=body, headers=await self.headers())
        assert answer.status_code == 200, answer.text

    async def rows(self, record_id: str) -> list[tuple[datetime, datetime]]:
        rows = (await self.http.get("/_sandbox/history")).json()["data"]
        return [
            (instant(row["Rescheduled_From"]), instant(row["Rescheduled_To"]))
            for row in rows
            if row["Appointment_Name"]["id"] == record_id
        ]


class LostAnswer(httpx.AsyncBaseTransport):
    """The sandbox behind a network that loses the first history POST's answer, and meanwhile the record moves.

    `written`: whether Zoho got the row before the answer was lost (else the request never arrived).
    `meanwhile` runs between the lost answer and the job's retry: the user reschedules again.
    """

    def __init__(
        self, inner: httpx.AsyncBaseTransport, *, written: bool, meanwhile: Callable[[], Awaitable[None]]
    ) -> None:
        self.inner = inner
        self.written = written
        self.meanwhile = meanwhile
        self.tripped = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == HISTORY_PATH and not self.tripped:
            self.tripped = True
            if self.written:
                await self.inner.handle_async_request(request)
            await self.meanwhile()
            raise httpx.ReadTimeout("answer lost", request=request)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


async def missed_letters(redis: ArqRedis, record_id: str) -> list[tuple[datetime, datetime]]:
    letters = [letter for letter in await DeadLetters(redis).all() if letter.record_id == record_id]
    assert all(letter.error_code == MISSED_RESCHEDULE for letter in letters), letters
    spans = [letter.context["missed"] for letter in letters]
    return sorted((instant(span["Rescheduled_From"]), instant(span["Rescheduled_To"])) for span in spans)


async def ledger_states(redis: ArqRedis) -> list[str]:
    entries = [orjson.loads(await redis.get(key)) async for key in redis.scan_iter("crmflow:ledger:*")]
    return sorted(entry["state"] for entry in entries)


async def lose_an_answer(
    redis: ArqRedis, redis_url: str, zoho: Zoho, days: list[int], *, lost_at: int, written: bool = True
) -> str:
    """An appointment seen at days[0], then moved to each later day; the job that logs the move to
    days[lost_at] loses the history POST's answer, and the moves after it happen before that job's retry."""
    record_id = await zoho.create(december(days[0]))
    await enqueue_change(redis, "zoho", "Appointments__s", record_id, operation="insert")
    await run_worker(redis_url, zoho.http)
    for n in days[1 : lost_at + 1]:
        await zoho.reschedule(record_id, december(n))

    async def move_on() -> None:
        for n in days[lost_at + 1 :]:
            await zoho.reschedule(record_id, december(n))

    lossy = LostAnswer(zoho.http._transport, written=written, meanwhile=move_on)
    await enqueue_change(redis, "zoho", "Appointments__s", record_id)
    async with httpx.AsyncClient(transport=lossy, base_url="http://sandbox") as http:
        await run_worker(redis_url, http)
    assert lossy.tripped
    return record_id


async def covered_once(redis: ArqRedis, zoho: Zoho, record_id: str, days: list[int]) -> None:
    """Rows and letters chain from the first start to the last, each used once, none left over (the soak's check)."""
    left = await zoho.rows(record_id) + await missed_letters(redis, record_id)
    at = december(days[0])
    while at != december(days[-1]):
        (step,) = [move for move in left if move[0] == at]
        left.remove(step)
        at = step[1]
    assert left == []


async def test_a_row_inside_the_hidden_span_splits_the_letter(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    days = [10, 11, 12, 13, 14]
    record_id = await lose_an_answer(redis, redis_url, zoho, days, lost_at=2)

    # The retry saw 12-10 → 12-14 with Zoho naming 12-13 → 12-14: 12-10 → 12-13 was hidden, and Zoho already
    # has 12-11 → 12-12 from the lost answer. Before the fix this was one letter for 12-10 → 12-13.
    assert await zoho.rows(record_id) == [(december(11), december(12)), (december(13), december(14))]
    assert await missed_letters(redis, record_id) == [(december(10), december(11)), (december(12), december(13))]
    await covered_once(redis, zoho, record_id, days)
    # The entry the lost answer left pending was settled against Zoho's history, and nothing is left to find.
    assert await ledger_states(redis) == ["done", "done"]
    assert [key async for key in redis.scan_iter("crmflow:pending:*")] == []
    letter = (await DeadLetters(redis).all())[0]
    span = letter.context["hidden_span"]
    assert (instant(span["Rescheduled_From"]), instant(span["Rescheduled_To"])) == (december(10), december(13))
    assert span["rescheduled_after"] <= span["rescheduled_before"]


async def test_a_pending_row_zoho_never_got_stays_in_the_letter(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    days = [10, 11, 12, 13, 14]
    record_id = await lose_an_answer(redis, redis_url, zoho, days, lost_at=2, written=False)

    # 12-11 → 12-12 never reached Zoho and nothing will send it again (the job moved on with the record):
    # the operator logs it, as part of 12-10 → 12-13.
    assert await zoho.rows(record_id) == [(december(13), december(14))]
    assert await missed_letters(redis, record_id) == [(december(10), december(13))]
    await covered_once(redis, zoho, record_id, days)


async def test_letters_follow_moves_backwards_in_time(redis: ArqRedis, redis_url: str, zoho: Zoho) -> None:
    # Appointment times go back as readily as forward. Seen at 12-14, moved to 12-11, 12-13 (the answer to
    # that row is lost), 12-12, 12-10: hidden 12-14 → 12-11 and 12-13 → 12-12, and Zoho has 12-11 → 12-13.
    days = [14, 11, 13, 12, 10]
    record_id = await lose_an_answer(redis, redis_url, zoho, days, lost_at=2)

    assert await missed_letters(redis, record_id) == [(december(13), december(12)), (december(14), december(11))]
    await covered_once(redis, zoho, record_id, days)


async def test_a_longer_hidden_span_with_rows_at_both_ends_and_inside(
    redis: ArqRedis, redis_url: str, zoho: Zoho
) -> None:
    # Seen at 12-01, moved to 12-02, 12-03, 12-04; the job logging 12-03 → 12-04 loses its answer (Zoho has the
    # row); then 12-05, 12-06, 12-07. The retry sees 12-01 → 12-07, Zoho naming 12-06 → 12-07: of the hidden
    # 12-01 → 12-06, Zoho has 12-03 → 12-04 in the middle.
    days = [1, 2, 3, 4, 5, 6, 7]
    record_id = await lose_an_answer(redis, redis_url, zoho, days, lost_at=3)

    assert await missed_letters(redis, record_id) == [(december(1), december(3)), (december(4), december(6))]
    await covered_once(redis, zoho, record_id, days)
