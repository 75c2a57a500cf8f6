"""log_reschedule_history (Zoho): the row it writes, and exactly-once in effect across retries and crashes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from workers.actions.zoho_history import (
    history_row,
    log_zoho_reschedule,
    missed_reschedule,
    reschedule_key,
    same_reschedule,
    uncovered_spans,
)
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.diff import Change, FieldChange
from workers.errors import ActionNotApplicableError, CrmTransientError
from workers.keys import pending_effects
from workers.ledger import Ledger
from workers.record import Record
from workers.rules.model import LogRescheduleHistoryParams

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OLD, NEW = "2026-11-24T09:00:00+05:30", "2026-11-25T10:30:00+05:30"
PATRICIA = {"name": "Patricia Boyle", "id": "5545974000000393001", "email": "p@example.com"}
JAMES = {"name": "James Doe", "id": "5545974000000393002"}
NO_PARAMS = LogRescheduleHistoryParams()


def rescheduled(**overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "id": "5545974000002555001",
        "Appointment_Name": "AC Repair - James",
        "Appointment_Start_Time": NEW,
        "Rescheduled_From": OLD,
        "Rescheduled_To": NEW,
        "Rescheduled_Time": "2026-11-21T17:00:46+05:30",
        "Rescheduled_By": PATRICIA,
        "Reschedule_Reason": "By Customer",
        "Reschedule_Note": "Customer unavailable",
        "Reschedule_Count": 1,
        "Modified_By": JAMES,
        "Modified_Time": "2026-11-21T17:05:00+05:30",
    } | overrides
    return Record(
        "zoho", "Appointments__s", "5545974000002555001", datetime.fromisoformat(fields["Modified_Time"]), fields
    )


MOVED = Change(fields={"Appointment_Start_Time": FieldChange(OLD, NEW)})


def test_row_from_a_rescheduled_record() -> None:
    assert history_row(rescheduled(), MOVED, NO_PARAMS, now=NOW) == {
        "Appointment_Name": {"name": "AC Repair - James", "id": "5545974000002555001"},
        "Rescheduled_From": OLD,
        "Rescheduled_To": NEW,
        "Rescheduled_Time": "2026-11-21T17:00:46+05:30",
        "Rescheduled_By": {"name": "Patricia Boyle", "id": "5545974000000393001"},
        "Reschedule_Reason": "By Customer",
        "Reschedule_Note": "Customer unavailable",
    }


def test_rule_parameters_override_the_record() -> None:
    params = LogRescheduleHistoryParams(reason="By Team", note="Moved by dispatch")

    row = history_row(rescheduled(), MOVED, params, now=NOW)

    assert (row["Reschedule_Reason"], row["Reschedule_Note"]) == ("By Team", "Moved by dispatch")


def test_rescheduled_fields_of_an_older_reschedule_are_not_used() -> None:
    # Rescheduled_To is not the new start: the record's Rescheduled_* describe an earlier reschedule.
    record = rescheduled(Rescheduled_To="2026-11-20T09:00:00+05:30")

    row = history_row(record, MOVED, NO_PARAMS, now=NOW)

    assert row["Rescheduled_By"] == {"name": "James Doe", "id": "5545974000000393002"}
    assert row["Rescheduled_Time"] == "2026-11-21T17:05:00+05:30"
    assert "Reschedule_Reason" not in row
    assert "Reschedule_Note" not in row


def test_rescheduled_time_is_never_in_the_future() -> None:
    record = rescheduled(Rescheduled_Time="2026-11-21T12:00:30+00:00")

    row = history_row(record, MOVED, NO_PARAMS, now=NOW)

    assert row["Rescheduled_Time"] == "2026-11-21T12:00:00+00:00"


@pytest.mark.parametrize(
    ("record", "change", "reason"),
    [
        (rescheduled(), Change(fields={"Status": FieldChange("Scheduled", "Cancelled")}), "did not change"),
        (rescheduled(), Change(fields={"Appointment_Start_Time": FieldChange(None, NEW)}), "not an ISO 8601"),
        (rescheduled(Rescheduled_By=None, Modified_By=None), MOVED, "names no user"),
    ],
)
def test_not_applicable(record: Record, change: Change, reason: str) -> None:
    with pytest.raises(ActionNotApplicableError, match=reason):
        history_row(record, change, NO_PARAMS, now=NOW)


def test_same_reschedule_compares_instants_exactly() -> None:
    row = history_row(rescheduled(), MOVED, NO_PARAMS, now=NOW)
    utc = {
        "Rescheduled_From": "2026-11-24T03:30:00+00:00",
        "Rescheduled_To": "2026-11-25T05:00:00+00:00",
        "Rescheduled_Time": "2026-11-21T11:30:46+00:00",
    }

    assert same_reschedule(utc, row)
    assert not same_reschedule(utc | {"Rescheduled_Time": "2026-11-21T11:31:46+00:00"}, row)
    assert not same_reschedule(utc | {"Rescheduled_To": "2026-11-25T05:30:00+00:00"}, row)
    assert not same_reschedule({}, row)


def test_zohos_own_rescheduled_from_is_used_and_a_hidden_reschedule_reported() -> None:
    # Seen at A; since then A -> B and B -> C happened; Zoho's fields describe B -> C.
    a, b, c = "2026-11-24T09:00:00+00:00", "2026-11-25T09:00:00+00:00", "2026-11-26T09:00:00+00:00"
    record = rescheduled(Appointment_Start_Time=c, Rescheduled_From=b, Rescheduled_To=c, Reschedule_Count=2)
    change = Change(fields={"Appointment_Start_Time": FieldChange(a, c), "Reschedule_Count": FieldChange(0, 2)})

    row = history_row(record, change, NO_PARAMS, now=NOW)

    assert (row["Rescheduled_From"], row["Rescheduled_To"]) == (b, c)
    assert missed_reschedule(record, change) == {"Rescheduled_From": a, "Rescheduled_To": b}


def test_rescheduled_from_set_explicitly_on_a_single_reschedule_is_not_a_hidden_one() -> None:
    a, b, c = "2026-11-24T09:00:00+00:00", "2026-11-25T09:00:00+00:00", "2026-11-26T09:00:00+00:00"
    record = rescheduled(Appointment_Start_Time=c, Rescheduled_From=b, Rescheduled_To=c, Reschedule_Count=1)
    change = Change(fields={"Appointment_Start_Time": FieldChange(a, c), "Reschedule_Count": FieldChange(0, 1)})

    assert missed_reschedule(record, change) == {}
    assert missed_reschedule(rescheduled(), MOVED) == {}


class FakeHistory:
    """Zoho's history endpoints in memory; can fail the next POST after (or before) storing the row."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.posts = 0
        self.lose_answer = False
        self.lose_request = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.method == "GET":
            return httpx.Response(200, json={"data": self.rows}) if self.rows else httpx.Response(204)
        self.posts += 1
        if self.lose_request:
            self.lose_request = False
            raise httpx.ReadTimeout("request lost before Zoho got it", request=request)
        row = orjson.loads(request.content)["data"][0] | {"id": f"row{len(self.rows) + 1}"}
        self.rows.append(row)
        if self.lose_answer:
            self.lose_answer = False
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(
            201, json={"data": [{"code": "SUCCESS", "details": {"id": row["id"]}, "status": "success"}]}
        )


def zoho(redis: ArqRedis, fake: FakeHistory) -> ZohoClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    tokens = ZohoTokens(
        redis, http, accounts_url="https://a", client_id="c", client_secret=SecretStr("s"), refresh_token=SecretStr("r")
    )
    return ZohoClient(http, api_domain="https://api", tokens=tokens)


async def test_a_repeated_action_writes_one_row(redis: ArqRedis) -> None:
    fake = FakeHistory()
    client, ledger = zoho(redis, fake), Ledger(redis)

    first = await log_zoho_reschedule(client, ledger, rescheduled(), MOVED, NO_PARAMS, now=NOW)
    again = await log_zoho_reschedule(client, ledger, rescheduled(), MOVED, NO_PARAMS, now=NOW + timedelta(hours=1))

    assert (first.status, again.status) == ("created", "already_logged")
    assert fake.posts == 1
    assert len(fake.rows) == 1


async def test_lost_answer_then_retry_adopts_the_row_instead_of_writing_again(redis: ArqRedis) -> None:
    # Without the read-before-write, the retry would POST a second row for the same reschedule.
    fake = FakeHistory()
    fake.lose_answer = True
    client, ledger = zoho(redis, fake), Ledger(redis)

    with pytest.raises(CrmTransientError):
        await log_zoho_reschedule(client, ledger, rescheduled(), MOVED, NO_PARAMS, now=NOW)
    retried = await log_zoho_reschedule(client, ledger, rescheduled(), MOVED, NO_PARAMS, now=NOW)

    assert retried.status == "found_in_crm"
    assert retried.detail == "row1"
    assert fake.posts == 1
    again = await log_zoho_reschedule(client, ledger, rescheduled(), MOVED, NO_PARAMS, now=NOW)
    assert again.status == "already_logged"


async def test_a_row_zoho_wrote_itself_is_adopted(redis: ArqRedis) -> None:
    fake = FakeHistory()
    fake.rows.append(
        {
            "id": "zoho-own",
            "Rescheduled_From": OLD,
            "Rescheduled_To": NEW,
            "Rescheduled_Time": "2026-11-21T17:00:46+05:30",
        }
    )

    result = await log_zoho_reschedule(zoho(redis, fake), Ledger(redis), rescheduled(), MOVED, NO_PARAMS, now=NOW)

    assert (result.status, result.detail) == ("found_in_crm", "zoho-own")
    assert fake.posts == 0


async def test_retry_after_a_lost_answer_resends_the_same_row_even_if_the_record_moved_on(redis: ArqRedis) -> None:
    # Zoho's Rescheduled_* describe an older reschedule, so the row's time comes from Modified_Time. Between
    # the lost answer and the retry someone edits another field: Modified_Time moves by 20 minutes. Without
    # the pending ledger entry the retry would build a different row and write it as a second one.
    fake = FakeHistory()
    fake.lose_answer = True
    client, ledger = zoho(redis, fake), Ledger(redis)
    old_account = {"Rescheduled_To": "2026-11-20T09:00:00+05:30"}

    with pytest.raises(CrmTransientError):
        await log_zoho_reschedule(client, ledger, rescheduled(**old_account), MOVED, NO_PARAMS, now=NOW)
    edited = rescheduled(**old_account, Modified_Time="2026-11-21T17:25:00+05:30")
    retried = await log_zoho_reschedule(client, ledger, edited, MOVED, NO_PARAMS, now=NOW)

    assert retried.status == "found_in_crm"
    assert fake.posts == 1


async def test_back_and_forth_within_minutes_logs_every_reschedule(redis: ArqRedis) -> None:
    fake = FakeHistory()
    client, ledger = zoho(redis, fake), Ledger(redis)
    moves = [(OLD, NEW, 1, "17:00:46"), (NEW, OLD, 2, "17:01:30"), (OLD, NEW, 3, "17:02:10")]

    for before, after, count, at in moves:
        record = rescheduled(
            Appointment_Start_Time=after,
            Rescheduled_From=before,
            Rescheduled_To=after,
            Reschedule_Count=count,
            Rescheduled_Time=f"2026-11-21T{at}+05:30",
        )
        change = Change(fields={"Appointment_Start_Time": FieldChange(before, after)})
        assert (await log_zoho_reschedule(client, ledger, record, change, NO_PARAMS, now=NOW)).status == "created"

    assert [(r["Rescheduled_From"], r["Rescheduled_To"]) for r in fake.rows] == [(OLD, NEW), (NEW, OLD), (OLD, NEW)]


A_TO_B_MADE_AT = "2026-11-21T16:50:00+05:30"


async def test_a_step_an_earlier_try_logged_is_not_reported_as_missed(redis: ArqRedis) -> None:
    # Found by the soak: a try wrote A -> B and failed before saving the new state; its retry sees A -> C
    # and would report A -> B as a hidden reschedule although Zoho has its row.
    a, b, c = "2026-11-24T09:00:00+00:00", "2026-11-25T09:00:00+00:00", "2026-11-26T09:00:00+00:00"
    fake = FakeHistory()
    # A -> B was made after the state seen (since) and before B -> C (the record's Rescheduled_Time, 17:00:46).
    fake.rows.append({"id": "row-ab", "Rescheduled_From": a, "Rescheduled_To": b, "Rescheduled_Time": A_TO_B_MADE_AT})
    record = rescheduled(Appointment_Start_Time=c, Rescheduled_From=b, Rescheduled_To=c, Reschedule_Count=2)
    change = Change(
        fields={"Appointment_Start_Time": FieldChange(a, c), "Reschedule_Count": FieldChange(0, 2)},
        since=datetime.fromisoformat("2026-11-21T16:30:00+05:30"),
    )

    result = await log_zoho_reschedule(zoho(redis, fake), Ledger(redis), record, change, NO_PARAMS, now=NOW)

    assert result.status == "created"
    assert result.missed == {}
    assert [(r["Rescheduled_From"], r["Rescheduled_To"]) for r in fake.rows] == [(a, b), (b, c)]


def moved(frm: str, to: str, count: int, at: str) -> Record:
    """The appointment after a reschedule from `frm` to `to` made at `at`, its `count`th."""
    fields = {"Rescheduled_From": frm, "Rescheduled_To": to, "Rescheduled_Time": at, "Reschedule_Count": count}
    return rescheduled(Appointment_Start_Time=to, Modified_Time=at, **fields)


SEEN = datetime.fromisoformat("2026-11-21T16:00:00+05:30")  # when the state at 12-10 was seen


def since_seen(old: str, new: str, count: int) -> Change:
    counts = FieldChange(0, count)
    return Change(fields={"Appointment_Start_Time": FieldChange(old, new), "Reschedule_Count": counts}, since=SEEN)


async def test_a_row_a_lost_answer_left_inside_the_hidden_span_is_not_reported(redis: ArqRedis) -> None:
    # The soak's case, at the action: seen at 12-10; the try logging 12-11 -> 12-12 loses Zoho's answer (the
    # row is there, the ledger entry pending); the record moves on to 12-13 and 12-14 before the retry.
    fake, ledger = FakeHistory(), Ledger(redis)
    client = zoho(redis, fake)
    fake.lose_answer = True
    at_12 = moved(day(11), day(12), 2, "2026-11-21T16:10:00+05:30")
    with pytest.raises(CrmTransientError):
        await log_zoho_reschedule(client, ledger, at_12, since_seen(day(10), day(12), 2), NO_PARAMS, now=NOW)
    at_14 = moved(day(13), day(14), 4, "2026-11-21T16:30:00+05:30")

    result = await log_zoho_reschedule(client, ledger, at_14, since_seen(day(10), day(14), 4), NO_PARAMS, now=NOW)

    assert result.status == "created"
    assert result.missed == {
        "uncovered": [
            {"Rescheduled_From": day(10), "Rescheduled_To": day(11)},
            {"Rescheduled_From": day(12), "Rescheduled_To": day(13)},
        ],
        "hidden_span": {
            "Rescheduled_From": day(10),
            "Rescheduled_To": day(13),
            "rescheduled_after": "2026-11-21T16:00:00+05:30",
            "rescheduled_before": "2026-11-21T16:30:00+05:30",
        },
    }
    # The pending entry was settled against Zoho's history: done, with the row Zoho has.
    lost = reschedule_key(at_12, history_row(at_12, since_seen(day(10), day(12), 2), NO_PARAMS, now=NOW))
    assert await ledger.get(lost) == {"state": "done", "id": "row1"}
    assert await ledger.pending_in(pending_effects("zoho", "Appointments__s", at_14.id)) == {}
    assert fake.posts == 2


async def test_a_row_zoho_never_got_stays_in_the_report(redis: ArqRedis) -> None:
    # As above, but the POST of 12-11 -> 12-12 never reached Zoho. Nothing will send it again (the record has
    # moved past that reschedule), so it is part of what the operator logs.
    fake, ledger = FakeHistory(), Ledger(redis)
    client = zoho(redis, fake)
    fake.lose_request = True
    at_12 = moved(day(11), day(12), 2, "2026-11-21T16:10:00+05:30")
    with pytest.raises(CrmTransientError):
        await log_zoho_reschedule(client, ledger, at_12, since_seen(day(10), day(12), 2), NO_PARAMS, now=NOW)
    at_14 = moved(day(13), day(14), 4, "2026-11-21T16:30:00+05:30")

    result = await log_zoho_reschedule(client, ledger, at_14, since_seen(day(10), day(14), 4), NO_PARAMS, now=NOW)

    assert result.missed["uncovered"] == [{"Rescheduled_From": day(10), "Rescheduled_To": day(13)}]
    lost = reschedule_key(at_12, history_row(at_12, since_seen(day(10), day(12), 2), NO_PARAMS, now=NOW))
    assert (await ledger.get(lost) or {})["state"] == "pending"  # never claimed done: Zoho has no such row
    assert await ledger.pending_in(pending_effects("zoho", "Appointments__s", at_14.id)) == {}
    assert [(r["Rescheduled_From"], r["Rescheduled_To"]) for r in fake.rows] == [(day(13), day(14))]


async def test_a_retry_of_the_same_reschedule_is_left_to_the_ledger(redis: ArqRedis) -> None:
    # The entry this very action left pending is not settled early: apply_once looks for it and adopts it.
    fake, ledger = FakeHistory(), Ledger(redis)
    client = zoho(redis, fake)
    fake.lose_answer = True
    at_14 = moved(day(13), day(14), 4, "2026-11-21T16:30:00+05:30")
    change = since_seen(day(10), day(14), 4)
    with pytest.raises(CrmTransientError):
        await log_zoho_reschedule(client, ledger, at_14, change, NO_PARAMS, now=NOW)

    result = await log_zoho_reschedule(client, ledger, at_14, change, NO_PARAMS, now=NOW)

    assert (result.status, result.detail) == ("found_in_crm", "row1")
    assert result.missed["uncovered"] == [{"Rescheduled_From": day(10), "Rescheduled_To": day(13)}]
    assert fake.posts == 1


def day(n: int) -> str:
    return f"2026-12-{n:02d}T09:00:00+00:00"


def made(minute: int) -> str:
    """When a reschedule was made: minutes after 2026-11-21 10:00 UTC."""
    return (datetime(2026, 11, 21, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)).isoformat()


AFTER, BEFORE = datetime(2026, 11, 21, 10, 0, tzinfo=UTC), datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


def moves(*rows: tuple[int, int, int]) -> list[dict[str, Any]]:
    """History rows (from day, to day, made at minute)."""
    return [{"Rescheduled_From": day(a), "Rescheduled_To": day(b), "Rescheduled_Time": made(m)} for a, b, m in rows]


def left(span: tuple[int, int], rows: list[dict[str, Any]], **window: datetime) -> list[tuple[int, int]]:
    missed = {"Rescheduled_From": day(span[0]), "Rescheduled_To": day(span[1])}
    stretches = uncovered_spans(missed, rows, after=window.get("after", AFTER), before=window.get("before", BEFORE))
    return [(int(s["Rescheduled_From"][8:10]), int(s["Rescheduled_To"][8:10])) for s in stretches]


@pytest.mark.parametrize(
    ("rows", "uncovered"),
    [
        ([], [(1, 4)]),
        ([(1, 2, 5)], [(2, 4)]),
        ([(3, 4, 5)], [(1, 3)]),
        ([(1, 2, 5), (3, 4, 9)], [(2, 3)]),
        ([(1, 2, 5), (2, 3, 6), (3, 4, 7)], []),
        ([(1, 2, 5), (2, 1, 6)], [(1, 4)]),
        # The soak's case: a row strictly inside the span, chained to neither end.
        ([(2, 3, 5)], [(1, 2), (3, 4)]),
        ([(2, 3, 5), (3, 2, 6), (2, 3, 7)], [(1, 2), (3, 4)]),
        # Zoho listed them newest first: rows are placed by when they were made, not by the list.
        ([(3, 4, 9), (1, 2, 5)], [(2, 3)]),
    ],
    ids=["none-logged", "start", "end", "both-ends", "all", "cycle", "inside", "back-and-forth", "newest-first"],
)
def test_uncovered_spans(rows: list[tuple[int, int, int]], uncovered: list[tuple[int, int]]) -> None:
    assert left((1, 4), moves(*rows)) == uncovered


def test_appointment_times_may_go_backwards() -> None:
    # Hidden: 12-14 → 12-11 → 12-13 → 12-12 → 12-10; Zoho has 12-11 → 12-13.
    assert left((14, 10), moves((11, 13, 5))) == [(14, 11), (13, 10)]
    assert left((14, 10), moves((13, 12, 5))) == [(14, 13), (12, 10)]


def test_rows_made_outside_the_window_are_other_moves() -> None:
    # 12-01 → 12-02 was logged long before the state seen at 12-01, and 12-03 → 12-04 after 12-04 left the
    # span (it cannot be, but a row Zoho wrote itself or a hand-made one might say so).
    rows = moves((1, 2, -60), (3, 4, 45))
    assert left((1, 4), rows) == [(1, 4)]


def test_the_neighbouring_moves_at_the_windows_edges_are_not_the_spans() -> None:
    # Zoho's times have whole seconds: the move into 12-01 was made at `after` itself, the latest one (12-04
    # → 12-05, logged by an earlier try) at `before`. Both chain out of the span; 12-02 → 12-03 is inside.
    rows = moves((9, 1, 0), (2, 3, 0), (4, 5, 30))
    assert left((1, 4), rows) == [(1, 2), (3, 4)]


def test_all_in_one_second_the_rows_are_ordered_by_how_they_chain() -> None:
    # A test (or a fast user) makes every move within one second: times cannot order the rows, the chain can.
    rows = moves((8, 9, 0), (9, 1, 0), (3, 4, 0), (2, 3, 0), (5, 6, 0), (7, 8, 0))
    assert left((1, 7), rows, after=AFTER, before=AFTER) == [(1, 2), (4, 5), (6, 7)]


def test_a_span_without_a_usable_start_or_end_leaves_nothing() -> None:
    assert uncovered_spans({}, moves((1, 2, 5)), after=AFTER, before=BEFORE) == []
    same = {"Rescheduled_From": day(1), "Rescheduled_To": day(1)}
    assert uncovered_spans(same, [], after=AFTER, before=BEFORE) == []


@st.composite
def histories(draw: st.DrawFn, *, one_second: bool) -> tuple[list[int], list[dict[str, Any]], list[tuple[int, int]]]:
    """A hidden span with some steps logged, older rows leading to it and the latest move after it.

    Returns the path, Zoho's history rows (older ones, the span's, the latest) and the stretches nobody
    logged: each run of unlogged steps from where it starts to where it ends, unless it returns there.
    Appointment times are small numbers, in any order, and repeat (A → B → A); with `one_second` every row
    was made in the same second and the times never repeat.
    """
    values = st.integers(1, 24) if one_second else st.integers(1, 6)
    path = draw(st.lists(values, min_size=2, max_size=9, unique=one_second))
    path = [v for i, v in enumerate(path) if i == 0 or v != path[i - 1]]
    assume(len(path) >= 2 and path[0] != path[-1])
    steps = list(itertools.pairwise(path))
    logged = draw(st.lists(st.booleans(), min_size=len(steps), max_size=len(steps)))
    older = draw(st.lists(st.integers(25, 28), max_size=3, unique=True)) if one_second else []
    before_start = [*older, path[0]]
    second = 0 if one_second else 1
    rows = [(a, b, 0) for a, b in itertools.pairwise(before_start)]
    rows += [(a, b, second * (i + 1)) for i, ((a, b), kept) in enumerate(zip(steps, logged, strict=True)) if kept]
    rows += [(path[-1], 31 if one_second else path[-1] % 6 + 1, second * 30)] if draw(st.booleans()) else []
    if not one_second:
        rows = draw(st.permutations(rows))
    expected: list[tuple[int, int]] = []
    run_from: int | None = None  # where the current run of unlogged steps started
    for (a, _b), kept in zip(steps, logged, strict=True):
        if kept and run_from is not None and run_from != a:
            expected.append((run_from, a))
        run_from = None if kept else (a if run_from is None else run_from)
    if run_from is not None and run_from != path[-1]:
        expected.append((run_from, path[-1]))
    return path, moves(*rows), expected


@settings(max_examples=400, deadline=None)
@given(histories(one_second=False))
def test_stretches_and_rows_make_the_path_exactly(case: tuple[list[int], list[dict[str, Any]], Any]) -> None:
    path, rows, expected = case
    assert left((path[0], path[-1]), rows) == expected


@settings(max_examples=400, deadline=None)
@given(histories(one_second=True))
def test_within_one_second_stretches_and_rows_still_make_the_path(
    case: tuple[list[int], list[dict[str, Any]], Any],
) -> None:
    path, rows, expected = case
    assert left((path[0], path[-1]), rows, after=AFTER, before=AFTER) == expected
