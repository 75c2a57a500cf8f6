"""Callbacks as large as the body cap: parsed in linear time, queued in chunks, answered in seconds, while the
receiver keeps answering everyone else."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from arq.connections import ArqRedis
from arq.jobs import deserialize_job

from crmflow.embedded_redis import free_port
from receiver.validate import validate_zoho, zoho_events
from tests.conftest import sample
from tests.processes import answers, crmflow_env, start, stop, wait_for
from workers.contract import PROCESS_CHANGE, QUEUE_NAME, ChangeEvent, loads
from workers.queue import ENQUEUE_CHUNK, enqueue_events

TOKEN = "zoho-TOKEN-large-0c4e2b5f6a7d8e91"
BODY_CAP = 1_048_576


JSON = {"content-type": "application/json"}


def cpu_s(pid: int) -> float:
    """The CPU time (user and system) process `pid` has used so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime, fields 14 and 15


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line for line in status if line.startswith("VmHWM")).split()[1])


def record_ids(count: int) -> list[str]:
    return [str(5_545_974_000_000_000_000 + n) for n in range(count)]


def callback(ids: list[str], *, with_fields: bool = False) -> dict[str, object]:
    body: dict[str, object] = sample("zoho/appointment_update") | {"token": TOKEN, "ids": ids}
    if with_fields:
        body["affected_fields"] = [{record_id: ["Appointment_Start_Time"]} for record_id in ids]
        body["affected_values"] = [{"record_id": i, "values": {"Status": "Rescheduled"}} for i in ids]
    return body


def largest_callback() -> bytes:
    """A callback with as many ids as fit under the body cap (about 47,000)."""
    ids = record_ids(60_000)
    low, high = 1, len(ids)
    while low < high:  # the longest prefix of ids that fits
        middle = (low + high + 1) // 2
        if len(orjson.dumps(callback(ids[:middle]))) <= BODY_CAP:
            low = middle
        else:
            high = middle - 1
    return orjson.dumps(callback(ids[:low]))


@pytest.mark.timeout(20)
def test_changed_fields_of_20000_records_take_linear_time() -> None:
    # 20,000 ids each with an affected_fields and an affected_values entry (about 1 MiB): scanning both lists
    # once per id took 55 s; one pass takes well under a second.
    events = zoho_events(validate_zoho(callback(record_ids(20_000), with_fields=True)))

    assert len(events) == 20_000
    assert {event.changed_fields for event in events} == {("Appointment_Start_Time", "Status")}


async def test_jobs_are_queued_in_chunks_in_arqs_own_format(redis: ArqRedis) -> None:
    base = {"source": "zoho", "module": "Appointments__s", "operation": "update", "notified_at_ms": 7}
    events = [ChangeEvent.model_validate(base | {"record_id": str(n)}) for n in range(2 * ENQUEUE_CHUNK + 3)]
    # arq's enqueue_job writes one job the slow way, for comparison; its result makes a second id a duplicate.
    reference = ChangeEvent.model_validate(base | {"record_id": "arq"})
    await redis.enqueue_job(PROCESS_CHANGE, reference.model_dump(mode="json"), _job_id=reference.job_id())
    await redis.set(f"arq:result:{events[1].job_id()}", b"x")

    first = await enqueue_events(redis, [*events, reference])
    again = await enqueue_events(redis, events[:3])

    assert (first.queued, first.duplicates) == (len(events) - 1, 2)
    assert (again.queued, again.duplicates) == (0, 3)
    ours = deserialize_job(await redis.get(f"arq:job:{events[0].job_id()}"), deserializer=loads)
    theirs = deserialize_job(await redis.get(f"arq:job:{reference.job_id()}"), deserializer=loads)
    assert (ours.function, list(ours.args), ours.kwargs) == (PROCESS_CHANGE, [events[0].model_dump(mode="json")], {})
    assert ours.job_try is None  # as arq writes a new job
    assert (theirs.function, theirs.kwargs, theirs.job_try) == (ours.function, ours.kwargs, ours.job_try)
    # Kept a day, as arq keeps the jobs it writes.
    for job_id in (events[0].job_id(), reference.job_id()):
        assert 86_000_000 < await redis.pttl(f"arq:job:{job_id}") <= 86_400_000
    assert await redis.zcard(QUEUE_NAME) == len(events)  # the reference job and all ours but the duplicate


@pytest.mark.slow
def test_a_callback_as_large_as_the_cap_is_answered_in_seconds_while_healthz_keeps_answering(
    redis_url: str, tmp_path: Path
) -> None:
    body = largest_callback()
    ids = len(orjson.loads(body)["ids"])
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = crmflow_env(REDIS_URL=redis_url, ZOHO_NOTIFY_TOKEN=TOKEN)
    process = start(["receiver", "--port", str(port)], env, tmp_path, tmp_path / "receiver.log")
    # Time is measured as the receiver's CPU time, not the wall clock: on a busy machine the receiver may wait
    # for a core for seconds, which says nothing of how much work the callback took or how long it held the loop.
    polls: list[tuple[int, float, float]] = []  # each /healthz: its status, wall time, receiver CPU meanwhile
    done = threading.Event()

    def poll_healthz() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not done.is_set():
                began, cpu_began = time.monotonic(), cpu_s(process.pid)
                status = client.get("/healthz").status_code
                polls.append((status, time.monotonic() - began, cpu_s(process.pid) - cpu_began))
                time.sleep(0.1)

    try:
        wait_for(lambda: answers(f"{url}/healthz"), "the receiver")
        poller = threading.Thread(target=poll_healthz)
        poller.start()
        began, cpu_began = time.monotonic(), cpu_s(process.pid)
        answer = httpx.post(f"{url}/webhooks/zoho", content=body, headers=JSON, timeout=30)
        took_s, took_cpu_s = time.monotonic() - began, cpu_s(process.pid) - cpu_began
        time.sleep(0.3)  # a few more polls after the answer
        done.set()
        poller.join()
        peak_kib = peak_rss_kib(process.pid)
    finally:
        stop(process)

    longest_poll_s, longest_poll_cpu_s = (max(poll[n] for poll in polls) for n in (1, 2))
    print(
        f"{ids} ids, {len(body)} bytes: answered in {took_s:.2f} s ({took_cpu_s:.2f} s of the receiver's CPU); "
        f"/healthz max {longest_poll_s * 1000:.0f} ms ({longest_poll_cpu_s * 1000:.0f} ms of the receiver's CPU) "
        f"over {len(polls)} polls; receiver peak RSS {peak_kib // 1024} MiB"
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "accepted", "queued": ids, "duplicates": 0, "ignored": 0}
    assert store.zcard(QUEUE_NAME) == ids
    assert took_cpu_s < 5
    # /healthz was answered all along: no poll waited while the receiver spent 1 s of CPU on the callback.
    assert len(polls) >= 3 and {poll[0] for poll in polls} == {200}
    assert longest_poll_cpu_s < 1.0
    # Memory grows with the body (at most 1 MiB), not beyond: about 110 MiB here, all told.
    assert peak_kib < 256 * 1024
