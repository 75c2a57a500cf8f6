"""Logs: one line per record whatever a request puts in it; control characters escaped, lengths capped."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import orjson
import pytest

from crmflow.embedded_redis import free_port
from crmflow.logs import FORMAT, MAX_ARG_CHARS, MAX_MESSAGE_CHARS, OneLineFormatter, cut, escape
from tests.conftest import sample
from tests.processes import answers, crmflow_env, start, stop, wait_for

HOSTILE = "Appointments__s\nERROR crmflow.receiver: forged\x00\x1b[31mred\u2028"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ")


def formatted(message: str, *args: object) -> str:
    record = logging.LogRecord("crmflow.receiver", logging.INFO, __file__, 1, message, args, None)
    return OneLineFormatter(FORMAT).format(record)


def test_control_characters_are_escaped() -> None:
    assert escape("plain text, tabs\tand all") == "plain text, tabs\\tand all"
    assert escape(HOSTILE) == "Appointments__s\\nERROR crmflow.receiver: forged\\x00\\x1b[31mred\\u2028"
    assert escape("café ✓") == "café ✓"


def test_a_record_with_hostile_arguments_is_one_escaped_line() -> None:
    line = formatted("zoho %s update: %d queued", HOSTILE, 1)

    assert "\n" not in line and "\x00" not in line and "\x1b" not in line
    assert LINE.match(line)
    assert line.endswith(
        "zoho Appointments__s\\nERROR crmflow.receiver: forged\\x00\\x1b[31mred\\u2028 update: 1 queued"
    )


def test_long_arguments_and_messages_are_cut() -> None:
    one = formatted("module %s", "m" * 10_000)
    many = formatted("%s " * 20, *(["x" * MAX_ARG_CHARS] * 20))

    assert f"{'m' * MAX_ARG_CHARS}…[{10_000 - MAX_ARG_CHARS} more]" in one
    assert len(many) < MAX_MESSAGE_CHARS + 100
    assert cut("short", 10) == "short"


@pytest.mark.slow
def test_the_receivers_log_shows_a_hostile_module_escaped_on_its_own_line(redis_url: str, tmp_path: Path) -> None:
    token = "zoho-TOKEN-logs-2f1e0d9c8b7a6f5e"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "receiver.log"
    process = start(
        ["receiver", "--port", str(port)], crmflow_env(REDIS_URL=redis_url, ZOHO_NOTIFY_TOKEN=token), tmp_path, log
    )
    try:
        wait_for(lambda: answers(f"{url}/healthz"), "the receiver")
        body = sample("zoho/appointment_update") | {"token": token, "module": HOSTILE}
        answer = httpx.post(
            f"{url}/webhooks/zoho", content=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        wait_for(lambda: b"forged" in log.read_bytes(), "the receiver's log line")
    finally:
        stop(process)

    assert answer.status_code == 200
    raw = log.read_bytes()
    assert b"\x00" not in raw and b"\x1b" not in raw and "\u2028".encode() not in raw
    lines = raw.decode().splitlines()
    assert all(LINE.match(line) for line in lines), lines  # uvicorn's own lines included
    (logged,) = [line for line in lines if "forged" in line]
    assert "zoho Appointments__s\\nERROR crmflow.receiver: forged\\x00\\x1b[31mred\\u2028 update" in logged
