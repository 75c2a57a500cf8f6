"""log_reschedule_history (Zoho): the row it writes, and exactly-once in effect across retries and crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from arq.connections import ArqRedis
from pydantic import SecretStr

from workers.actions.zoho_history import (
    history_row,
    log_zoho_reschedule,
    missed_reschedule,
    same_reschedule,
    uncovered_span,
)
from workers.crm.zoho import ZohoClient
from workers.crm.zoho_auth import ZohoTokens
from workers.diff import Change, FieldChange
from workers.errors import ActionNotApplicableError, CrmTransientError
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

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/v2/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        if request.method == "GET":
            return httpx.Response(200, json={"data": self.rows}) if self.rows else httpx.Response(204)
        self.posts += 1
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


async def test_a_step_an_earlier_try_logged_is_not_reported_as_missed(redis: ArqRedis) -> None:
    # Found by the soak: a try wrote A -> B and failed before saving the new state; its retry sees A -> C
    # and would report A -> B as a hidden reschedule although Zoho has its row.
    a, b, c = "2026-11-24T09:00:00+00:00", "2026-11-25T09:00:00+00:00", "2026-11-26T09:00:00+00:00"
    fake = FakeHistory()
    fake.rows.append({"id": "row-ab", "Rescheduled_From": a, "Rescheduled_To": b, "Rescheduled_Time": NOW.isoformat()})
    record = rescheduled(Appointment_Start_Time=c, Rescheduled_From=b, Rescheduled_To=c, Reschedule_Count=2)
    change = Change(fields={"Appointment_Start_Time": FieldChange(a, c), "Reschedule_Count": FieldChange(0, 2)})

    result = await log_zoho_reschedule(zoho(redis, fake), Ledger(redis), record, change, NO_PARAMS, now=NOW)

    assert result.status == "created"
    assert result.missed == {}
    assert [(r["Rescheduled_From"], r["Rescheduled_To"]) for r in fake.rows] == [(a, b), (b, c)]


@pytest.mark.parametrize(
    ("rows", "left"),
    [
        ([], ("01", "04")),
        ([("01", "02")], ("02", "04")),
        ([("03", "04")], ("01", "03")),
        ([("01", "02"), ("03", "04")], ("02", "03")),
        ([("01", "02"), ("02", "03"), ("03", "04")], None),
        ([("01", "02"), ("02", "01")], ("01", "04")),
    ],
    ids=["nothing-logged", "start-logged", "end-logged", "both-ends", "all-logged", "cycle"],
)
def test_uncovered_span(rows: list[tuple[str, str]], left: tuple[str, str] | None) -> None:
    def at(day: str) -> str:
        return f"2026-12-{day}T09:00:00+00:00"

    history = [{"Rescheduled_From": at(a), "Rescheduled_To": at(b)} for a, b in rows]
    span = uncovered_span({"Rescheduled_From": at("01"), "Rescheduled_To": at("04")}, history)

    assert span == ({} if left is None else {"Rescheduled_From": at(left[0]), "Rescheduled_To": at(left[1])})
