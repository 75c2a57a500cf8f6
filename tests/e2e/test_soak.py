"""Soak: 2,000+ reschedules through every process, while things go wrong, end logged exactly once.

Real sandbox, receiver and two workers on a private Redis with appendonly. The sandbox enforces the CRMs'
limits (Zoho's concurrency cap of an Ultimate org, HubSpot's 190 per 10 s) and the workers are set to them,
so their shared limiter is part of what is soaked. Meanwhile about 10 % of the
workers' CRM calls answer 429 or 500, some after the write took effect. Past notifications are re-sent,
some with a new server_time so they arrive out of order, and HubSpot batches are redelivered. One worker
is SIGKILLed twice and Redis is restarted once. At the end, every appointment's sequence of starts is
covered exactly once by the history rows (Zoho), notes (HubSpot) and dead letters carrying their reason.
No gap (a reschedule lost), no overlap (one logged twice), nothing else.
Scale with CRMFLOW_SOAK_ROUNDS (default 15 Zoho / 20 HubSpot moves per appointment).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from crmflow.embedded_redis import EmbeddedRedis, free_port
from tests.processes import (
    answers,
    hubspot_retries_done,
    sandbox_auth,
    stack_env,
    start,
    stop,
    wait_for,
    wait_until_idle,
)
from workers.contract import QUEUE_NAME
from workers.record import parse_datetime

ZOHO_APPOINTMENTS, HUBSPOT_APPOINTMENTS = 70, 50
ROUNDS = int(os.environ.get("CRMFLOW_SOAK_ROUNDS", "20"))  # Zoho keeps at most 20 rows per appointment
ZOHO_ROUNDS = min(ROUNDS, 15)
TOKEN, SECRET = "soak-token", "sandbox-hubspot-client-secret"
NOTE = re.compile(r"rescheduled from (.+? UTC) to (.+? UTC)\.")
Moves = dict[str, list[tuple[str, str]]]  # per appointment: (from, to) of each logged or dead-lettered move


@dataclass
class Soak:
    sandbox: httpx.Client
    receiver: str
    store_url: str
    zoho_starts: dict[str, list[str]] = field(default_factory=dict)
    hubspot_starts: dict[str, list[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    auth: dict[str, str] = field(default_factory=dict)

    def zoho_reschedule(self, record_id: str, start: datetime) -> None:
        # One token for the test's own calls, as a real client would (Zoho throttles refreshes).
        self.auth = self.auth or sandbox_auth(self.sandbox)
        body = {"data": [{"id": record_id, "Appointment_Start_Time": start.isoformat()}]}
        answer = self.sandbox.put("/crm/v7/Appointments__s", json=body, headers=self.auth)
        assert answer.status_code == 200, answer.text
        self.zoho_starts[record_id].append(start.isoformat())

    def hubspot_reschedule(self, record_id: str, start: datetime) -> None:
        change = {"properties": {"hs_appointment_start": start.isoformat()}, "user_id": "71230003"}
        assert self.sandbox.patch(f"/_sandbox/hubspot/appointments/{record_id}", json=change).status_code == 200
        self.hubspot_starts[record_id].append(start.isoformat())

    def resend_some(self) -> None:
        """Duplicates and out-of-order deliveries, as senders make them."""
        zoho = self.sandbox.get("/_sandbox/notifications").json()["deliveries"]
        for delivery in self.rng.sample(zoho, k=min(len(zoho), 12)):
            body = delivery["body"]
            if self.rng.random() < 0.5:
                body = body | {"server_time": body["server_time"] + 1}  # a new, late copy: a new job
            httpx.post(f"{self.receiver}/webhooks/zoho", json=body, timeout=10)
        batches = self.sandbox.get("/_sandbox/hubspot/webhooks").json()["deliveries"]
        for batch in self.rng.sample(batches, k=min(len(batches), 6)):
            self.sandbox.post(f"/_sandbox/hubspot/webhooks/{batch['seq']}/redeliver")

    def sent_everything(self) -> bool:
        """Whether the sandbox has nothing left to send for the changes this test made.

        Zoho: one callback per change (an insert per appointment, an update per reschedule), sent once and
        logged when answered. HubSpot: every reschedule's hs_appointment_start event (epoch ms, the sandbox's
        default format) is in a batch the sandbox's own attempts delivered, and no batch waits for a retry.
        """
        zoho_changes = sum(map(len, self.zoho_starts.values()))
        if self.sandbox.get("/_sandbox/notifications").json()["count"] < zoho_changes:
            return False
        log = self.sandbox.get("/_sandbox/hubspot/webhooks").json()["deliveries"]
        if not hubspot_retries_done(log):
            return False
        delivered = {
            (str(event["objectId"]), event["propertyValue"])
            for entry in log
            if entry["redelivery_of"] is None and entry["status_code"] == 200
            for event in entry["body"]
            if event.get("propertyName") == "hs_appointment_start"
        }
        wanted = {
            (record_id, str(int(datetime.fromisoformat(start).timestamp() * 1000)))
            for record_id, starts in self.hubspot_starts.items()
            for start in starts[1:]
        }
        return wanted <= delivered

    def resend_refused(self) -> None:
        """What a sender does with deliveries crmflow did not accept (e.g. 503 while Redis restarted)."""
        for delivery in self.sandbox.get("/_sandbox/notifications").json()["deliveries"]:
            if delivery["status_code"] != 200:
                answer = httpx.post(f"{self.receiver}/webhooks/zoho", json=delivery["body"], timeout=10)
                assert answer.status_code == 200, answer.text
        for batch in self.sandbox.get("/_sandbox/hubspot/webhooks").json()["deliveries"]:
            if batch["status_code"] != 200:
                self.sandbox.post(f"/_sandbox/hubspot/webhooks/{batch['seq']}/redeliver")


def faults() -> list[dict[str, Any]]:
    """About 10 % of the workers' CRM calls fail; the reschedules the test itself makes (PUT, control API) do not."""
    zoho = [
        {"method": method, "path_prefix": "/crm/v7/", "status": status, "probability": 0.05, **extra}
        for method in ("GET", "POST")
        for status, extra in ((429, {}), (500, {"after": method == "POST"}))
    ]
    secondly = {"status": "error", "message": "You have reached your secondly limit.", "policyName": "SECONDLY"}
    hubspot = [
        {"method": method, "path_prefix": "/crm/objects/", "status": 429, "probability": 0.02, "body": secondly}
        for method in ("GET", "POST")
    ] + [
        {
            "method": method,
            "path_prefix": "/crm/objects/",
            "status": 500,
            "probability": 0.08,
            "after": method == "POST",  # a POST whose answer is lost: the note exists all the same
        }
        for method in ("GET", "POST")
    ]
    return zoho + hubspot


def covered_once(starts: list[str], intervals: list[tuple[str, str]]) -> bool:
    """Whether the intervals chain from the first start to the last, each used once, none left over."""
    remaining = list(intervals)
    at = starts[0]
    while at != starts[-1]:
        nexts = [interval for interval in remaining if interval[0] == at]
        if len(nexts) != 1:
            return False
        remaining.remove(nexts[0])
        at = nexts[0][1]
    return not remaining


def readable(value: str) -> str:
    moment = parse_datetime(value)
    assert moment is not None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def dead_letters(store: redis.Redis) -> list[dict[str, Any]]:
    letters = []
    for key in store.scan_iter("crmflow:deadletter:*"):
        raw = store.get(key)
        if isinstance(raw, bytes):
            letters.append(orjson.loads(raw))
    return letters


def intervals_from_letters(
    letters: list[dict[str, Any]], field_name: str, norm: Any
) -> dict[str, list[tuple[str, str]]]:
    """Per record, the moves each dead letter holds (a hidden reschedule, or the change an action failed on)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for letter in letters:
        missed = letter["context"].get("missed")
        moved = letter["context"].get("changed", {}).get(field_name)
        if missed:
            found.setdefault(letter["record_id"], []).append(
                (norm(missed["Rescheduled_From"]), norm(missed["Rescheduled_To"]))
            )
        elif moved and moved["old"] and moved["new"]:
            found.setdefault(letter["record_id"], []).append((norm(moved["old"]), norm(moved["new"])))
    return found


def instant(value: str) -> str:
    moment = parse_datetime(value)
    assert moment is not None
    return moment.astimezone(UTC).isoformat()


@dataclass
class Stack:
    """The soak's processes; Redis is replaced when restarted, workers when killed."""

    soak: Soak
    redis: EmbeddedRedis
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    logs: Path

    def kill_a_worker(self, label: str) -> None:
        self.processes[2].send_signal(signal.SIGKILL)
        self.processes[2].wait()
        self.processes[2] = start(["worker"], self.env, self.logs, self.logs / f"worker-{label}.log")

    def restart_redis(self) -> None:
        port, data = self.redis.port, self.redis.data_dir
        self.redis.stop()
        time.sleep(1.0)  # an outage to live through, not a settle: deliveries are refused (503) meanwhile
        self.redis = EmbeddedRedis(port=port, appendonly=True, data_dir=data)
        self.redis.start()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    data = tmp_path / "redis"
    data.mkdir()
    server = EmbeddedRedis(port=free_port(), appendonly=True, data_dir=data)
    redis_url = server.start()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox, receiver = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    env = stack_env(
        redis_url,
        sandbox,
        ZOHO_NOTIFY_TOKEN=TOKEN,
        HUBSPOT_CLIENT_SECRET=SECRET,
        PUBLIC_BASE_URL=receiver,
        WORKER_JOB_TIMEOUT_S="5",
        WORKER_RETRY_BASE_S="0.1",
        WORKER_RETRY_CAP_S="1",
        WORKER_MAX_TRIES="20",
        # The sandbox's HubSpot window (190 per 10 s, as Professional's): the workers may use all of it.
        HUBSPOT_REQUESTS_PER_10S="190",
        # The sandbox's Zoho org is an Ultimate one (25 calls at once, and one more for the soak's own
        # reschedules through the API): the workers may use all of it.
        ZOHO_EDITION="ultimate",
        LOG_LEVEL="WARNING",
    )
    hooks = ["--notify-url", f"{receiver}/webhooks/zoho", "--notify-token", TOKEN, "--zoho-max-concurrency", "26"]
    hooks += ["--hubspot-webhook-url", f"{receiver}/webhooks/hubspot"]
    processes = [
        start(["sandbox", "--port", str(sandbox_port), *hooks], env, tmp_path, tmp_path / "sandbox.log"),
        start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker-a.log"),
        start(["worker"], env, tmp_path, tmp_path / "worker-b.log"),
    ]
    client = httpx.Client(base_url=sandbox, timeout=30)
    running = Stack(Soak(client, receiver, redis_url), server, env, processes, tmp_path)
    try:
        wait_for(lambda: answers(f"{sandbox}/_sandbox/history") and answers(f"{receiver}/readyz"), "the stack")
        yield running
    finally:
        client.close()
        for process in running.processes:
            stop(process)
        running.redis.stop()


def create_appointments(soak: Soak, base: datetime, store: redis.Redis) -> None:
    for n in range(ZOHO_APPOINTMENTS):
        first = base + timedelta(minutes=n)
        fields = {"Appointment_Name": f"Soak {n}", "Appointment_Start_Time": first.isoformat()}
        record_id = soak.sandbox.post("/_sandbox/appointments", json=fields).json()["data"][0]["id"]
        soak.zoho_starts[record_id] = [first.isoformat()]
    for n in range(HUBSPOT_APPOINTMENTS):
        first = base + timedelta(minutes=n)
        props = {"hs_appointment_name": f"Soak {n}", "hs_appointment_start": first.isoformat()}
        record_id = soak.sandbox.post("/_sandbox/hubspot/appointments", json={"properties": props}).json()["id"]
        soak.hubspot_starts[record_id] = [first.isoformat()]
    # Every appointment's first state is known before it moves (its creation was processed).
    keys = [f"crmflow:snapshot:zoho:Appointments__s:{i}" for i in soak.zoho_starts]
    keys += [f"crmflow:snapshot:hubspot:appointments:{i}" for i in soak.hubspot_starts]
    wait_for(lambda: store.exists(*keys) == len(keys), "the appointments' first states", timeout_s=60)


def drive(stack: Stack, base: datetime) -> None:
    """The reschedules, with duplicates and out-of-order deliveries, two worker kills and a Redis restart."""
    soak = stack.soak
    for r in range(ROUNDS):
        for n, record_id in enumerate(soak.zoho_starts):
            if r < ZOHO_ROUNDS:
                soak.zoho_reschedule(record_id, base + timedelta(days=r + 1, minutes=n))
        for n, record_id in enumerate(soak.hubspot_starts):
            soak.hubspot_reschedule(record_id, base + timedelta(days=r + 1, minutes=n))
        soak.resend_some()
        if r in (4, 14):
            stack.kill_a_worker(f"after-round-{r}")
        if r == 9:
            stack.restart_redis()
    soak.resend_refused()


def outcome(soak: Soak, store: redis.Redis) -> tuple[list[dict[str, Any]], Moves, Moves]:
    """Dead letters, Zoho history rows and HubSpot notes, per appointment."""
    rows: dict[str, list[tuple[str, str]]] = {}
    for row in soak.sandbox.get("/_sandbox/history").json()["data"]:
        rows.setdefault(row["Appointment_Name"]["id"], []).append(
            (instant(row["Rescheduled_From"]), instant(row["Rescheduled_To"]))
        )
    notes: dict[str, list[tuple[str, str]]] = {}
    for note in soak.sandbox.get("/_sandbox/hubspot/notes").json()["notes"]:
        match = NOTE.search(note["properties"]["hs_note_body"])
        assert match is not None
        (record_id,) = note["associations"]["appointments"]
        notes.setdefault(record_id, []).append((match.group(1), match.group(2)))
    return dead_letters(store), rows, notes


@pytest.mark.timeout(900)
def test_soak(stack: Stack) -> None:
    soak = stack.soak
    store = redis.Redis.from_url(soak.store_url)
    base = (datetime.now(UTC) + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    create_appointments(soak, base, store)
    assert soak.sandbox.post("/_sandbox/faults", json=faults()).status_code == 200
    drive(stack, base)
    expected = sum(len(v) - 1 for v in soak.zoho_starts.values()) + sum(
        len(v) - 1 for v in soak.hubspot_starts.values()
    )
    assert expected >= (0 if "CRMFLOW_SOAK_ROUNDS" in os.environ else 2000)

    def settled() -> bool:
        letters, rows, notes = outcome(soak, store)
        done = sum(map(len, rows.values())) + sum(map(len, notes.values())) + len(letters)
        idle = store.zcard(QUEUE_NAME) == 0 and not list(store.scan_iter("arq:in-progress:*"))
        return idle and done >= 0.9 * expected

    wait_for(settled, "the soak to settle", timeout_s=300)
    # Then until nothing more can come: the sandbox has sent (and retried) everything, and every job is done.
    wait_until_idle(store, "the soak's late deliveries and retries", also=soak.sent_everything, timeout_s=120)
    letters, rows, notes = outcome(soak, store)
    zoho_letters = intervals_from_letters(letters, "Appointment_Start_Time", instant)
    hubspot_letters = intervals_from_letters(letters, "hs_appointment_start", readable)
    wrong_zoho = [
        i
        for i, starts in soak.zoho_starts.items()
        if not covered_once([instant(s) for s in starts], rows.get(i, []) + zoho_letters.get(i, []))
    ]
    wrong_hubspot = [
        i
        for i, starts in soak.hubspot_starts.items()
        if not covered_once([readable(s) for s in starts], notes.get(i, []) + hubspot_letters.get(i, []))
    ]
    unexplained = [
        entry for entry in letters if not entry["context"].get("missed") and not entry["context"].get("changed")
    ]

    debug = os.environ.get("CRMFLOW_SOAK_DEBUG")  # a file to dump the whole outcome to, for a failing run
    if debug:
        dump = {"starts": soak.zoho_starts, "rows": rows, "letters": letters, "wrong": wrong_zoho + wrong_hubspot}
        Path(debug).write_bytes(orjson.dumps(dump | {"hubspot_starts": soak.hubspot_starts, "notes": notes}))
    assert wrong_zoho == [], [(i, soak.zoho_starts[i], rows.get(i), zoho_letters.get(i)) for i in wrong_zoho[:3]]
    assert wrong_hubspot == [], [(i, notes.get(i), hubspot_letters.get(i)) for i in wrong_hubspot[:3]]
    assert unexplained == []
    assert set(rows) <= set(soak.zoho_starts) and set(notes) <= set(soak.hubspot_starts)  # nothing else
