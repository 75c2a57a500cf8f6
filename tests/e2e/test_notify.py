"""notify through every process: sandbox → receiver → Redis → worker → a webhook endpoint on loopback."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from standardwebhooks import Webhook

from crmflow.embedded_redis import free_port
from sandbox.notify_endpoint import Answer, NotifyEndpoint
from tests.processes import REPO, answers, sandbox_auth, stack_env, start, stop, wait_for, wait_until_idle
from tests.test_cli import crmflow
from workers.contract import QUEUE_NAME

APPOINTMENT = "5545974000002555001"  # the sandbox's "AC Repair - James", never rescheduled
TOKEN = "e2e-notify-token"
SECRET = "whsec_" + base64.b64encode(b"e2e-notify-secret-32-bytes-long!").decode()
PATH = "/hooks/late-moves"
RULE = """
  - name: tell-team-about-moves
    source: zoho
    module: Appointments__s
    when: {{changed: [Appointment_Start_Time]}}
    conditions:
      - {{field: Reschedule_Reason, equals: By Customer}}
    actions:
      - type: notify
        with:
          url: {url}
          secret_env: CRMFLOW_NOTIFY_SECRET
          text: "{{{{ record.Appointment_Name }}}} moved to {{{{ reschedule.new_start }}}}"
"""


@dataclass
class Stack:
    sandbox: str
    receiver: str
    store: redis.Redis
    endpoint: NotifyEndpoint
    logs: Path
    redis_url: str

    def logs_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(self.logs.glob("*.log")))

    def appointment(self) -> dict[str, Any]:
        with httpx.Client(base_url=self.sandbox, timeout=5) as zoho:
            body = zoho.get(f"/crm/v7/Appointments__s/{APPOINTMENT}", headers=sandbox_auth(zoho)).json()
        record: dict[str, Any] = body["data"][0]
        return record

    def reschedule(self, start: datetime) -> None:
        change = {"id": APPOINTMENT, "Appointment_Start_Time": start.isoformat(timespec="seconds")}
        change |= {"Reschedule_Reason": "By Customer"}
        with httpx.Client(base_url=self.sandbox, timeout=5) as zoho:
            answer = zoho.put("/crm/v7/Appointments__s", json={"data": [change]}, headers=sandbox_auth(zoho))
        assert answer.status_code == 200, answer.text


@pytest.fixture
def stack(redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    sandbox_port, receiver_port = free_port(), free_port()
    sandbox_url, receiver_url = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{receiver_port}"
    with NotifyEndpoint(SECRET) as endpoint:
        rules = tmp_path / "rules.yaml"
        rules.write_text((REPO / "rules" / "default.yaml").read_text() + RULE.format(url=f"{endpoint.url}{PATH}"))
        env = stack_env(
            redis_url,
            sandbox_url,
            ZOHO_NOTIFY_TOKEN=TOKEN,
            ZOHO_CHANNEL_IDS="1000000068001",
            RULES_PATH=str(rules),
            CRMFLOW_NOTIFY_SECRET=SECRET,
            WORKER_RETRY_BASE_S="0.05",
            WORKER_RETRY_CAP_S="0.2",
        )
        sandbox_args = ["sandbox", "--port", str(sandbox_port), "--notify-url", f"{receiver_url}/webhooks/zoho"]
        processes = [
            start([*sandbox_args, "--notify-token", TOKEN], env, tmp_path, tmp_path / "sandbox.log"),
            start(["receiver", "--port", str(receiver_port)], env, tmp_path, tmp_path / "receiver.log"),
            start(["worker"], env, tmp_path, tmp_path / "worker.log"),
        ]
        try:
            wait_for(lambda: answers(f"{sandbox_url}/_sandbox/history"), "the sandbox")
            wait_for(lambda: answers(f"{receiver_url}/readyz"), "the receiver")
            wait_for(lambda: bool(store.exists(f"{QUEUE_NAME}:health-check")), "the worker")
            yield Stack(sandbox_url, receiver_url, store, endpoint, tmp_path, redis_url)
        finally:
            for process in processes:
                stop(process)


def test_a_zoho_reschedule_reaches_the_endpoint_once_signed(stack: Stack) -> None:
    before = stack.appointment()
    new_start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=3)

    stack.reschedule(new_start)

    wait_for(lambda: len(stack.endpoint.received(PATH)) == 1, f"the notify delivery\n{stack.logs_text()}")
    wait_until_idle(stack.store, f"the workers\n{stack.logs_text()}")
    (received,) = stack.endpoint.received(PATH)
    body = Webhook(SECRET).verify(received.body, dict(received.headers))
    after = stack.appointment()
    old, new = before["Appointment_Start_Time"], after["Appointment_Start_Time"]
    assert {k: body[k] for k in ("type", "source", "module", "record_id", "operation", "rule")} == {
        "type": "crmflow.change",
        "source": "zoho",
        "module": "Appointments__s",
        "record_id": APPOINTMENT,
        "operation": "update",
        "rule": "tell-team-about-moves",
    }
    assert body["changed"]["Appointment_Start_Time"] == {"old": old, "new": new}
    assert body["reschedule"]["old_start"] == datetime.fromisoformat(old).isoformat()
    assert body["reschedule"]["new_start"] == datetime.fromisoformat(new).isoformat()
    assert body["text"] == f"AC Repair - James moved to {body['reschedule']['new_start']}"
    assert abs(int(received.headers["webhook-timestamp"]) - time.time()) < 60
    assert len(stack.endpoint.received()) == 1


def test_a_refused_delivery_is_a_dead_letter_crmflow_dlq_lists(stack: Stack, tmp_path: Path) -> None:
    stack.endpoint.answer(PATH, Answer(500), Answer(400, body=b"unknown channel"))

    stack.reschedule(datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=4))

    wait_for(lambda: len(stack.endpoint.received(PATH)) == 2, f"the retried delivery\n{stack.logs_text()}")
    wait_until_idle(stack.store, f"the workers\n{stack.logs_text()}")
    first, second = stack.endpoint.received(PATH)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    listed = crmflow("dlq", "list", cwd=tmp_path, REDIS_URL=stack.redis_url)
    assert listed.returncode == 0, listed.stderr
    assert "tell-team-about-moves/notify" in listed.stdout and "HTTP_400" in listed.stdout
    assert "1 dead letter" in listed.stdout
