"""`crmflow dlq` as an operator runs it (real processes, real Redis): list, show, replay and purge dead letters."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from arq.jobs import Job
from pydantic import ValidationError

from crmflow.dlq import parse_duration
from sandbox.app import create_app as create_sandbox
from sandbox.config import SandboxConfig
from tests.test_cli import crmflow
from tests.workers.test_jobs import HISTORY_PATH, NEVER_RESCHEDULED, Zoho, notify, soon, work, zoho_error
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, ChangeEvent, loads
from workers.deadletters import DeadLetter, DeadLetters, dead_letter_id
from workers.queue import enqueue_events
from workers.replay import replay_event

Dlq = Callable[..., Awaitable[subprocess.CompletedProcess[str]]]
RECORD = "5545974000002555001"


@pytest.fixture
def dlq(redis_url: str, tmp_path: Path) -> Dlq:
    """`python -m crmflow dlq ARGS` against the test database (or `redis_url=`), run off the event loop."""

    async def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        settings = {"REDIS_URL": redis_url} | env
        return await asyncio.to_thread(crmflow, "dlq", *args, cwd=tmp_path, **settings)

    return run


@pytest.fixture
async def zoho() -> AsyncIterator[Zoho]:
    app = create_sandbox(SandboxConfig())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as http:
        yield Zoho(http)


def letter(record_id: str = RECORD, failed_ago: timedelta = timedelta(hours=3), **fields: Any) -> DeadLetter:
    """A job whose retries ran out, `failed_ago` before now."""
    event = ChangeEvent(
        source=fields.get("source", "zoho"),
        module="Appointments__s",
        record_id=record_id,
        operation="update",
        notified_at_ms=1_763_717_400_123,
        channel_id="1000000068001",
    )
    failed_at = datetime.now(UTC) - failed_ago
    values: dict[str, Any] = {
        "id": dead_letter_id(event.job_id(), fields.get("rule"), fields.get("action")),
        "source": event.source,
        "module": event.module,
        "record_id": record_id,
        "event": event.model_dump(mode="json"),
        "error_class": "CrmTransientError",
        "error_code": "HTTP_500",
        "message": "gave up after 12 tries; last error: HTTP 500 from POST /crm/v7/Appointments_Rescheduled_History__s",
        "tries": 12,
        "first_failed_at": failed_at - timedelta(minutes=30),
        "last_failed_at": failed_at,
    }
    return DeadLetter.model_validate(values | fields)


def refused(record_id: str = RECORD, **fields: Any) -> DeadLetter:
    """An action the CRM refused for good (a final error, recorded by the action's rule)."""
    values: dict[str, Any] = {
        "rule": "zoho-log-reschedules",
        "action": "log_reschedule_history",
        "error_class": "CrmRejectedError",
        "error_code": "NOT_ALLOWED",
        "message": "NOT_ALLOWED: You have tried to make an entry without rescheduling",
        "tries": 1,
    }
    return letter(record_id, **(values | fields))


async def keep(redis: ArqRedis, *letters: DeadLetter) -> None:
    for item in letters:
        await DeadLetters(redis).add(item)


def records(stdout: str) -> list[str]:
    """The record column of `dlq list --json`."""
    return [item["record_id"] for item in json.loads(stdout)]


# --- list ------------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_list_with_no_letters(redis: ArqRedis, dlq: Dlq) -> None:
    text, as_json = await dlq("list"), await dlq("list", "--json")

    assert (text.returncode, text.stdout) == (0, "no dead letters\n")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])


@pytest.mark.slow
async def test_list_prints_a_table_oldest_failure_first(redis: ArqRedis, dlq: Dlq) -> None:
    old, new = refused("1", failed_ago=timedelta(days=2)), letter("2", failed_ago=timedelta(minutes=7))
    await keep(redis, new, old)

    done = await dlq("list")

    assert done.returncode == 0, done.stderr
    old_at, new_at = (item.last_failed_at.strftime("%Y-%m-%d %H:%M:%S") for item in (old, new))
    # The message is cut to keep one line per letter; `show` has it whole.
    assert done.stdout.splitlines() == [
        "id                last failure (UTC)   age  source  module           record  rule/action"
        "                                  error        tries  message",
        f"{old.id}  {old_at}  2d   zoho    Appointments__s  1       zoho-log-reschedules/log_reschedule_history"
        "  NOT_ALLOWED  1      NOT_ALLOWED: You have tried to make an entry without resche…",
        f"{new.id}  {new_at}  7m   zoho    Appointments__s  2       -                                          "
        "  HTTP_500     12     gave up after 12 tries; last error: HTTP 500 from POST /crm…",
        "2 dead letters",
    ]


@pytest.mark.slow
async def test_list_json_is_every_field_of_every_letter(redis: ArqRedis, dlq: Dlq) -> None:
    kept = refused(context={"changed": {"Appointment_Start_Time": {"old": "a", "new": "b"}}})
    await keep(redis, kept)

    done = await dlq("list", "--json")

    assert [DeadLetter.model_validate(item) for item in json.loads(done.stdout)] == [kept]


@pytest.mark.slow
async def test_list_filters_by_source(redis: ArqRedis, dlq: Dlq) -> None:
    await keep(redis, letter("z"), letter("h", source="hubspot"))

    assert records((await dlq("list", "--json", "--source", "hubspot")).stdout) == ["h"]


@pytest.mark.slow
async def test_list_filters_by_error_code(redis: ArqRedis, dlq: Dlq) -> None:
    await keep(redis, letter("transient"), refused("refused"))

    assert records((await dlq("list", "--json", "--error", "NOT_ALLOWED")).stdout) == ["refused"]


@pytest.mark.slow
async def test_list_filters_by_age(redis: ArqRedis, dlq: Dlq) -> None:
    await keep(
        redis,
        letter("week", failed_ago=timedelta(days=8)),
        letter("day", failed_ago=timedelta(hours=25)),
        letter("now", failed_ago=timedelta(minutes=2)),
    )

    older = await dlq("list", "--json", "--older-than", "1d")
    newer = await dlq("list", "--json", "--newer-than", "30m")
    between = await dlq("list", "--json", "--older-than", "12h", "--newer-than", "7d")

    assert records(older.stdout) == ["week", "day"]
    assert records(newer.stdout) == ["now"]
    assert records(between.stdout) == ["day"]


@pytest.mark.slow
async def test_a_bad_duration_is_a_usage_error(redis: ArqRedis, dlq: Dlq) -> None:
    done = await dlq("list", "--older-than", "7 days")

    assert done.returncode == 2
    assert "'7 days' is not a duration like 30m, 12h or 7d" in done.stderr


def test_durations() -> None:
    assert [parse_duration(text) for text in ("45s", "30m", "12h", "7d", "2w")] == [
        timedelta(seconds=45),
        timedelta(minutes=30),
        timedelta(hours=12),
        timedelta(days=7),
        timedelta(weeks=2),
    ]
    for bad in ("", "7", "d", "-1d", "1.5h", "7D"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)


# --- show ------------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_show_prints_every_field(redis: ArqRedis, dlq: Dlq) -> None:
    kept = refused(context={"changed": {"Appointment_Start_Time": {"old": "2026-03-04T10:00:00+00:00"}}})
    await keep(redis, kept)

    done = await dlq("show", kept.id)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:9] == [
        f"id            {kept.id}",
        "source        zoho",
        "module        Appointments__s",
        f"record        {RECORD}",
        "rule          zoho-log-reschedules",
        "action        log_reschedule_history",
        "error         NOT_ALLOWED (CrmRejectedError)",
        "message       NOT_ALLOWED: You have tried to make an entry without rescheduling",
        "tries         1",
    ]
    assert lines[9] == f"first failed  {kept.first_failed_at.strftime('%Y-%m-%d %H:%M:%S')} UTC (3h ago)"
    assert lines[10] == f"last failed   {kept.last_failed_at.strftime('%Y-%m-%d %H:%M:%S')} UTC (3h ago)"
    assert lines[11].startswith("replay        no: NOT_ALLOWED: ")
    assert lines[12] == "event         {"
    assert f'                "record_id": "{RECORD}",' in lines
    assert '                    "old": "2026-03-04T10:00:00+00:00"' in lines


@pytest.mark.slow
async def test_show_json(redis: ArqRedis, dlq: Dlq) -> None:
    kept = letter()
    await keep(redis, kept)

    done = await dlq("show", kept.id, "--json")

    assert DeadLetter.model_validate(json.loads(done.stdout)) == kept


@pytest.mark.slow
async def test_show_an_unknown_id(redis: ArqRedis, dlq: Dlq) -> None:
    done = await dlq("show", "0123456789abcdef")

    assert done.returncode == 1
    assert done.stderr == "crmflow: no dead letter 0123456789abcdef (see `crmflow dlq list`)\n"


# --- replay ----------------------------------------------------------------------------------------------


async def queued_jobs(redis: ArqRedis) -> dict[str, Any]:
    """Every job on the queue: its id and the arguments the worker will be called with."""
    jobs = {}
    for raw in await redis.zrange(QUEUE_NAME, 0, -1):
        info = await Job(raw.decode(), redis, _deserializer=loads).info()
        assert info is not None and info.function == PROCESS_CHANGE
        (jobs[raw.decode()],) = info.args
    return jobs


@pytest.mark.slow
async def test_replay_queues_the_letters_event_as_a_job_of_its_own(redis: ArqRedis, dlq: Dlq) -> None:
    failed = letter()
    original = ChangeEvent.model_validate(failed.event)
    await keep(redis, failed)

    done = await dlq("replay", failed.id)

    assert done.returncode == 0, done.stderr
    ((job_id, args),) = (await queued_jobs(redis)).items()
    replayed = ChangeEvent.model_validate(args)
    # The worker gets the event exactly as it failed, under a new job id (see the next test for why), naming
    # the letter it replays (for the event log).
    assert replayed.model_copy(update={"replay": 0, "replay_of": None}) == original
    assert replayed.replay > 0
    assert replayed.replay_of == failed.id
    assert job_id == replayed.job_id() == f"{original.job_id()}:replay:{replayed.replay}" != original.job_id()
    assert done.stdout == f"replayed {failed.id} as job {job_id}\nreplayed 1, skipped 0\n"
    # The letter is gone: if the replayed job fails again, the worker records a new one.
    assert await DeadLetters(redis).all() == []


@pytest.mark.slow
async def test_replay_is_not_refused_while_arq_remembers_the_failed_job(redis: ArqRedis, dlq: Dlq) -> None:
    # arq keeps a finished job's result, and refuses its id, for WORKER_KEEP_RESULT_S (a day). Queued under
    # its old id, the replay would be dropped as a duplicate and its letter deleted: the work lost for good.
    failed = letter()
    original = ChangeEvent.model_validate(failed.event)
    await redis.set(f"arq:result:{original.job_id()}", b"{}", ex=86_400)
    await keep(redis, failed)
    assert (await enqueue_events(redis, [original])).duplicates == 1

    done = await dlq("replay", failed.id)

    assert done.returncode == 0, done.stderr
    assert len(await queued_jobs(redis)) == 1


async def test_a_replay_of_a_replay_gets_yet_another_job_id() -> None:
    # A replayed job that fails again leaves a letter whose event already carries a replay number.
    failed = letter()
    first = replay_event(failed, stamp_ms=1_000)
    again = replay_event(failed.model_copy(update={"event": first.model_dump(mode="json")}), stamp_ms=1_000)

    assert first.replay == 1_000
    assert again.replay == 1_001  # the clock did not move on (or went back): still a new job id
    assert len({ChangeEvent.model_validate(failed.event).job_id(), first.job_id(), again.job_id()}) == 3


@pytest.mark.slow
async def test_replay_json(redis: ArqRedis, dlq: Dlq) -> None:
    failed, missed = letter("1"), refused("2", error_code="MISSED_RESCHEDULE")
    await keep(redis, failed, missed)

    done = await dlq("replay", failed.id, missed.id, "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (job_id,) = await queued_jobs(redis)
    assert report["replayed"] == [{"id": failed.id, "job_id": job_id}]
    assert [item["id"] for item in report["skipped"]] == [missed.id]
    assert report["skipped"][0]["reason"].startswith("MISSED_RESCHEDULE: ")


@pytest.mark.slow
async def test_replay_all_with_filters(redis: ArqRedis, dlq: Dlq) -> None:
    await keep(
        redis,
        letter("zoho-old", failed_ago=timedelta(days=2)),
        letter("zoho-new", failed_ago=timedelta(minutes=1)),
        letter("hubspot-old", failed_ago=timedelta(days=2), source="hubspot"),
        letter("timeout-old", failed_ago=timedelta(days=2), error_code="JOB_TIMEOUT"),
    )

    done = await dlq("replay", "--all", "--source", "zoho", "--error", "HTTP_500", "--older-than", "1d")
    newer = await dlq("replay", "--all", "--newer-than", "1h", "--json")

    assert done.returncode == newer.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "replayed 1, skipped 0"
    queued = sorted(ChangeEvent.model_validate(args).record_id for args in (await queued_jobs(redis)).values())
    assert queued == ["zoho-new", "zoho-old"]
    assert sorted(item.record_id for item in await DeadLetters(redis).all()) == ["hubspot-old", "timeout-old"]


@pytest.mark.slow
async def test_replay_all_with_nothing_to_replay(redis: ArqRedis, dlq: Dlq) -> None:
    done = await dlq("replay", "--all")

    assert (done.returncode, done.stdout) == (0, "no dead letters\n")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give dead letter IDs, or --all"),
        (("abc", "--all"), "give dead letter IDs or --all, not both"),
        (("abc", "--source", "zoho"), "--source, --error, --older-than and --newer-than go with --all"),
    ],
    ids=["neither", "both", "filter-without-all"],
)
async def test_replay_usage_errors(redis: ArqRedis, dlq: Dlq, args: tuple[str, ...], message: str) -> None:
    done = await dlq("replay", *args)

    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.slow
async def test_replay_skips_what_a_replay_cannot_redo(redis: ArqRedis, dlq: Dlq) -> None:
    # Replaying these would delete the letter while the worker does nothing: the failure would vanish unseen.
    fields = {"id": "00000000malformed", "source": "unknown", "event": {"record_id": 42}, "error_code": "MALFORMED_JOB"}
    malformed = letter("unknown").model_copy(update=fields)
    missed = refused("missed", error_code="MISSED_RESCHEDULE", error_class="MissedReschedule")
    legacy = refused("refused")  # an action letter from a worker that did not keep the action's inputs yet
    await keep(redis, malformed, missed, legacy)

    one = await dlq("replay", malformed.id)
    every = await dlq("replay", "--all")

    assert one.returncode == 1  # an explicit ID that could not be replayed
    assert one.stdout.startswith(f"skipped {malformed.id}: MALFORMED_JOB: its job's arguments are not a ChangeEvent")
    assert every.returncode == 0
    lines = every.stdout.splitlines()
    assert f"skipped {missed.id}: MISSED_RESCHEDULE: Zoho keeps no time or user for this reschedule" in lines[1]
    assert f"skipped {legacy.id}: NOT_ALLOWED: written by a worker that did not keep what running the" in lines[2]
    assert lines[-1] == "replayed 0, skipped 3"
    assert await queued_jobs(redis) == {}
    assert len(await DeadLetters(redis).all()) == 3


@pytest.mark.slow
async def test_replay_an_unknown_id(redis: ArqRedis, dlq: Dlq) -> None:
    done = await dlq("replay", "0123456789abcdef")

    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "skipped 0123456789abcdef: no such dead letter"


@pytest.mark.slow
async def test_a_replayed_job_is_run_by_the_worker_and_logs_the_reschedule(
    redis: ArqRedis, redis_url: str, dlq: Dlq, zoho: Zoho
) -> None:
    # The whole path: retries run out into a dead letter; once Zoho recovers, the replay writes the row.
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6))
    await zoho.faults({"method": "POST", "path_prefix": HISTORY_PATH, "status": 500, "times": 4})
    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)
    (failed,) = await DeadLetters(redis).all()
    assert await zoho.history(NEVER_RESCHEDULED) == []

    done = await dlq("replay", failed.id, "--json")
    await work(redis_url, zoho)

    (replayed,) = json.loads(done.stdout)["replayed"]
    info = await Job(replayed["job_id"], redis, _deserializer=loads).result_info()
    assert info is not None and info.result["status"] == "processed"
    assert len(await zoho.history(NEVER_RESCHEDULED)) == 1
    assert await DeadLetters(redis).all() == []


@pytest.mark.slow
async def test_an_action_letter_is_shown_then_replayed_into_one_row(
    redis: ArqRedis, redis_url: str, dlq: Dlq, zoho: Zoho
) -> None:
    # The CRM refused the row once; the job went on and stored the record as seen. `show` says what to log by
    # hand, and `replay` runs just that action again on what the letter kept: one row.
    await notify(redis, NEVER_RESCHEDULED, "insert")
    await work(redis_url, zoho)
    await zoho.reschedule(NEVER_RESCHEDULED, soon(6), Reschedule_Note="Away")
    await zoho.faults(zoho_error(400, "INVALID_DATA", "invalid data", "Rescheduled_By") | {"times": 1})
    await notify(redis, NEVER_RESCHEDULED)
    await work(redis_url, zoho)
    (failed,) = await DeadLetters(redis).all()

    shown = await dlq("show", failed.id)
    done = await dlq("replay", failed.id)
    await work(redis_url, zoho)

    assert shown.returncode == 0, shown.stderr
    by_hand = [line.split() for line in shown.stdout.splitlines() if line.startswith("                ")]
    assert ["Reschedule_Note", "Away"] in by_hand
    assert ["Rescheduled_By", '{"name":', '"Patricia', 'Boyle",', '"id":', '"5545974000000393001"}'] in by_hand
    assert done.returncode == 0, done.stderr
    event = ChangeEvent.model_validate(failed.event)
    ((replayed, job_id),) = [line.split(" as job ") for line in done.stdout.splitlines() if " as job " in line]
    assert replayed == f"replayed {failed.id}"
    assert job_id.startswith(f"{event.job_id()}:replay:")
    assert job_id.endswith(":zoho-log-reschedules:log_reschedule_history")
    (row,) = await zoho.history(NEVER_RESCHEDULED)
    assert row["Reschedule_Note"] == "Away"
    assert await DeadLetters(redis).all() == []


# --- the replay number on the queue contract -------------------------------------------------------------


def test_a_notifications_job_id_and_arguments_are_unchanged_by_the_replay_field() -> None:
    # Job ids are how redeliveries are recognised; new workers must also accept jobs old receivers queued, and
    # old workers those new receivers queue (a rolling deploy), so nothing about a notification's job changes.
    event = ChangeEvent(source="zoho", module="Appointments__s", record_id=RECORD, operation="update", notified_at_ms=7)

    assert event.job_id() == f"zoho:Appointments__s:{RECORD}:update:7"
    assert "replay" not in event.model_dump(mode="json")
    assert event.model_copy(update={"replay": 9}).model_dump(mode="json")["replay"] == 9
    with pytest.raises(ValidationError):
        ChangeEvent.model_validate(event.model_dump() | {"replay": -1})


# --- purge -----------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_purge_removes_letters_older_than_given(redis: ArqRedis, dlq: Dlq) -> None:
    await keep(redis, letter("a", failed_ago=timedelta(days=9)), letter("b", failed_ago=timedelta(days=8)))
    await keep(redis, letter("c", failed_ago=timedelta(days=6)))

    done = await dlq("purge", "--older-than", "7d")
    again = await dlq("purge", "--older-than", "7d")

    assert (done.returncode, done.stdout) == (0, "purged 2 dead letters\n")
    assert again.stdout == "purged 0 dead letters\n"
    assert [item.record_id for item in await DeadLetters(redis).all()] == ["c"]


@pytest.mark.slow
async def test_purge_by_source_and_error(redis: ArqRedis, dlq: Dlq) -> None:
    old = timedelta(days=9)
    await keep(redis, letter("z", failed_ago=old), letter("h", failed_ago=old, source="hubspot"))
    await keep(redis, refused("r", failed_ago=old))

    by_source = await dlq("purge", "--older-than", "1d", "--source", "hubspot")
    by_error = await dlq("purge", "--older-than", "1d", "--error", "NOT_ALLOWED", "--json")

    assert by_source.stdout == "purged 1 dead letter\n"
    assert json.loads(by_error.stdout) == {"purged": 1}
    assert [item.record_id for item in await DeadLetters(redis).all()] == ["z"]


@pytest.mark.slow
async def test_purge_needs_an_age(redis: ArqRedis, dlq: Dlq) -> None:
    # There is no "purge everything": an operator names how old is old enough.
    done = await dlq("purge")

    assert done.returncode == 2
    assert "Missing option '--older-than'" in done.stderr


# --- Redis unreachable -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [("list",), ("show", "abc"), ("replay", "abc"), ("replay", "--all"), ("purge", "--older-than", "1d")],
    ids=["list", "show", "replay", "replay-all", "purge"],
)
async def test_redis_unreachable_is_one_line_and_exit_2(dlq: Dlq, args: tuple[str, ...]) -> None:
    done = await dlq(*args, REDIS_URL="redis://:s3cret@127.0.0.1:1/0")

    assert done.returncode == 2
    assert done.stderr.startswith("crmflow: Redis at 127.0.0.1:1/0 failed: ConnectionError: ")
    assert len(done.stderr.splitlines()) == 1  # no traceback
    assert "s3cret" not in done.stderr
