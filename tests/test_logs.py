"""Logs: one line per record whatever a request puts in it; control characters escaped, lengths capped."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from crmflow.embedded_redis import free_port
from crmflow.logs import (
    FORMAT,
    MAX_ARG_CHARS,
    MAX_MESSAGE_CHARS,
    ContextFilter,
    JsonFormatter,
    LogSettings,
    OneLineFormatter,
    cut,
    escape,
)
from crmflow.settings import load_settings
from tests.conftest import sample
from tests.processes import answers, crmflow_env, start, stop, wait_for
from workers.log_context import FIELDS, log_context

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


def json_formatted(message: str, *args: object, exc: BaseException | None = None) -> str:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("crmflow.jobs", logging.WARNING, __file__, 1, message, args, info)
    ContextFilter().filter(record)
    return JsonFormatter().format(record)


def test_a_json_line_is_one_object_with_the_fields_and_the_context() -> None:
    job = {"job_id": "zoho:Appointments__s:1:update:5", "source": "zoho", "module": "Appointments__s", "record_id": "1"}
    with log_context(**job), log_context(rule="zoho-log-reschedules", action="log_reschedule_history"):
        line = json_formatted("try %d failed (%s)", 2, "HTTP_500")

    entry = orjson.loads(line)
    assert set(entry) == {"timestamp", "level", "logger", "message", *FIELDS}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "crmflow.jobs", "try 2 failed (HTTP_500)")
    assert (entry["record_id"], entry["rule"], entry["action"]) == (
        "1",
        "zoho-log-reschedules",
        "log_reschedule_history",
    )


def test_a_json_line_with_hostile_text_stays_one_line_and_decodes_to_the_same_text() -> None:
    line = json_formatted("zoho %s update", HOSTILE + "\ud800")

    assert "\n" not in line and "\x00" not in line and "\x1b" not in line and "\u2028" not in line
    decoded = json.loads(line)
    assert decoded["message"] == f"zoho {HOSTILE}\ud800 update"


def test_long_arguments_are_cut_in_json_too() -> None:
    entry = orjson.loads(json_formatted("module %s", "m" * 10_000))

    assert entry["message"] == f"module {'m' * MAX_ARG_CHARS}…[{10_000 - MAX_ARG_CHARS} more]"


def test_text_lines_end_with_the_context_escaped() -> None:
    with log_context(job_id="zoho:M\n1:2:update:5", source="zoho"):
        record = logging.LogRecord("crmflow.jobs", logging.INFO, __file__, 1, "done", (), None)
        ContextFilter().filter(record)
    line = OneLineFormatter(FORMAT).format(record)

    assert line.endswith("crmflow.jobs: done [job_id=zoho:M\\n1:2:update:5 source=zoho]")


def failing(record: dict[str, str]) -> None:
    try:
        record["Phone"]
    except KeyError as exc:
        raise ValueError(f"Appointment_Name {record['Appointment_Name']!r} is invalid") from exc


def test_tracebacks_show_frames_and_types_but_never_a_message() -> None:
    try:
        failing({"Appointment_Name": "Jane " + "Doe", "Email": "jane.doe@example.com"})
    except ValueError as exc:
        caught = exc
    record = logging.LogRecord("crmflow.jobs", logging.ERROR, __file__, 1, "boom", (), (ValueError, caught, None))
    text = OneLineFormatter(FORMAT).format(record)
    entry = orjson.loads(json_formatted("boom", exc=caught))

    for shown in (text, entry["exception"]):
        assert "Jane Doe" not in shown
        assert "ValueError (message not logged)" in shown and "KeyError (message not logged)" in shown
        assert ", in failing" in shown


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, ("INFO", "text")),
        ({"LOG_FORMAT": "JSON", "LOG_LEVEL": "debug"}, ("DEBUG", "json")),
        ({"LOG_LEVEL": "warn"}, ("WARNING", "text")),
        ({"LOG_FORMAT": ""}, ("INFO", "text")),
    ],
)
def test_log_settings_read_format_and_level_in_any_case(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, environment: dict[str, str], expected: tuple[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    settings = load_settings(LogSettings)

    assert (settings.log_level, settings.log_format) == expected


def test_log_settings_come_from_the_env_file_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("LOG_FORMAT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("LOG_FORMAT=json\nLOG_LEVEL=WARNING\n")

    settings = load_settings(LogSettings)

    assert (settings.log_level, settings.log_format) == ("WARNING", "json")


def test_an_unknown_log_format_stops_any_command_naming_the_setting(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crmflow", "rules", "check", "x.yaml"],
        env=crmflow_env(LOG_FORMAT="xml"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "crmflow: invalid configuration",
        "  LOG_FORMAT: Input should be 'text' or 'json'",
    ]


def test_configured_lines_are_unchanged_without_the_callers_file_thread_and_process() -> None:
    # In a process of its own: configure() sets logging's module-wide switches.
    script = (
        "import logging\n"
        "from crmflow.logs import configure\n"
        "configure('INFO', 'text')\n"
        "assert logging._srcfile is None and not logging.logThreads and not logging.logProcesses\n"
        "logging.getLogger('crmflow.receiver').info('zoho %s: %d queued', 'Appointments__s', 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)

    (line,) = done.stderr.splitlines()
    assert LINE.match(line) and line.endswith(" INFO crmflow.receiver: zoho Appointments__s: 1 queued"), line


def test_the_time_of_a_line_is_what_logging_would_write() -> None:
    # OneLineFormatter keeps the last second's text: lines within one second and across seconds are unchanged.
    ours, standard = OneLineFormatter(FORMAT), logging.Formatter(FORMAT)
    for created in [1764520000.001, 1764520000.999, 1764520001.0, 1764520001.5, 1764519999.25, 0.0]:
        record = logging.LogRecord("crmflow.receiver", logging.INFO, __file__, 1, "m", (), None)
        record.created, record.msecs = created, (created - int(created)) * 1000

        assert ours.formatTime(record) == standard.formatTime(record)
        assert ours.format(record) == standard.format(record)
