"""Logs: one line per record, as readable text or (LOG_FORMAT=json) one JSON object, with the job's context.

Values that come from requests (a Zoho callback's module, record ids, a job id built from them) end up in
log messages. A newline in one could forge a line of its own, a NUL makes grep treat the whole file as
binary, and an ANSI escape repaints a terminal. So every control character of a message is escaped
(`\\n`, `\\x00`, `\\x1b`, ...), each argument is cut to MAX_ARG_CHARS and the message to MAX_MESSAGE_CHARS.
A JSON line holds the same cut message, JSON-escaped (and U+2028/U+2029 written as escapes too, as some
line readers split on them), so it is always exactly one line.

Each line carries the log context of the code that logged it (workers/log_context.py: job id, source,
module, record id, rule, action): as `key=value` pairs after a text message, as keys of a JSON object.

Personal data and secrets: a log line holds identifiers (record ids, job ids, rule and action names, field
names), counts, codes and crmflow's own wording, never a record's values nor what a CRM answered about them
(docs/operations.md, "Logs"). Exceptions are where values slip in unseen (a pydantic error quotes its
input, a CRM error its answer), so a logged traceback shows where it failed and each exception's type, never
an exception's message; code that logs an error names it with workers/errors.py `loggable`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
import unicodedata
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers import log_context

MAX_ARG_CHARS = 500
MAX_MESSAGE_CHARS = 4000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class LogSettings(BaseSettings):
    """LOG_LEVEL and LOG_FORMAT, for every crmflow command (read by crmflow/cli.py)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True)

    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")
    # text: readable lines (the default); json: one JSON object per line, for log collectors.
    log_format: LogFormat = Field(default="text", validation_alias="LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_name(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        name = value.strip().upper()
        return _LEVEL_ALIASES.get(name, name)  # Python's logging takes WARN and FATAL too

    @field_validator("log_format", mode="before")
    @classmethod
    def _format_name(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


_LEVEL_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` with every control or line-separating character written as an escape sequence. Pure."""
    if text.isprintable():
        return text
    return "".join(_escaped(c) if unicodedata.category(c) in {"Cc", "Zl", "Zp", "Cs"} else c for c in text)


def cut(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a note of how many were left out. Pure."""
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit} more]"


def _with_cut_args(record: logging.LogRecord) -> logging.LogRecord:
    """The record with long string arguments cut (a copy: other handlers see the record unchanged)."""
    args = record.args
    if isinstance(args, tuple) and any(isinstance(a, str) and len(a) > MAX_ARG_CHARS for a in args):
        record = logging.makeLogRecord(record.__dict__)
        record.args = tuple(cut(a, MAX_ARG_CHARS) if isinstance(a, str) else a for a in args)
    return record


def _exception_name(exc: BaseException) -> str:
    kind = type(exc)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def traceback_without_messages(exc: BaseException) -> str:
    """The traceback of `exc` and its causes: every frame and each exception's type, no message. Pure."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for item in reversed(chain):
        frames = "".join(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        parts.append(f"Traceback (most recent call last):\n{frames}{_exception_name(item)} (message not logged)")
    return "\n\nThe above led to:\n\n".join(parts)


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    found = getattr(record, "crmflow_context", None)
    return dict(found) if isinstance(found, dict) else {}


class ContextFilter(logging.Filter):
    """Attaches the current log context (workers/log_context.py) to each record as it is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "crmflow_context"):
            record.crmflow_context = dict(log_context.current())
        return True


class OneLineFormatter(logging.Formatter):
    """Readable text: messages never span lines (arguments cut, control characters escaped), context appended."""

    # The last second formatted and its text: lines logged within one second share it (strftime is a third of
    # a line's formatting).
    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if second != int(record.created):
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, text)
        return self.default_msec_format % (text, record.msecs) if self.default_msec_format else text

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = cut(escape(record.message), MAX_MESSAGE_CHARS)
        line = super().formatMessage(record)
        context = _context_of(record)
        if context:
            line += " [" + " ".join(f"{name}={escape(value)}" for name, value in context.items()) + "]"
        return line

    def formatException(self, ei: Any) -> str:
        exc = ei[1]
        return traceback_without_messages(exc) if isinstance(exc, BaseException) else ""

    def formatStack(self, stack_info: str) -> str:
        return escape(stack_info)

    def format(self, record: logging.LogRecord) -> str:
        return super().format(_with_cut_args(record))


def _json_line(entry: dict[str, Any]) -> str:
    try:
        raw = orjson.dumps(entry).decode()
    except TypeError:  # a lone surrogate, which orjson refuses: the standard library writes it as an escape
        raw = json.dumps(entry, ensure_ascii=True, default=str)
    return raw.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message, the context, an exception."""

    def format(self, record: logging.LogRecord) -> str:
        record = _with_cut_args(record)
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": cut(record.getMessage(), MAX_MESSAGE_CHARS),
        }
        entry |= _context_of(record)
        if record.exc_info and isinstance(record.exc_info[1], BaseException):
            entry["exception"] = traceback_without_messages(record.exc_info[1])
        return _json_line(entry)


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else OneLineFormatter(FORMAT)


def configure(level: str, log_format: LogFormat = "text") -> None:
    """Log to standard error at `level` in `log_format`, one line per record, for crmflow and its libraries."""
    # No line shows the caller's file, function, thread or process: not looking them up per record saves about
    # a third of its cost (the "Optimization" section of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request URL at INFO; keep that for debugging only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
