"""Logs: every record on one line, whatever a request put in it; set up once by the command-line entry points.

Values that come from requests (a Zoho callback's module, record ids, a job id built from them) end up in
log messages. A newline in one could forge a line of its own, a NUL makes grep treat the whole file as
binary, and an ANSI escape repaints a terminal. So every control character of a message is escaped
(`\\n`, `\\x00`, `\\x1b`, ...), each argument is cut to MAX_ARG_CHARS and the message to MAX_MESSAGE_CHARS.
"""

from __future__ import annotations

import logging
import sys
import unicodedata

MAX_ARG_CHARS = 500
MAX_MESSAGE_CHARS = 4000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` with every control or line-separating character written as an escape sequence. Pure."""
    if text.isprintable():
        return text
    return "".join(_escaped(c) if unicodedata.category(c) in {"Cc", "Zl", "Zp"} else c for c in text)


def cut(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a note of how many were left out. Pure."""
    return text if len(text) <= limit else f"{text[:limit]}…[{len(text) - limit} more]"


class OneLineFormatter(logging.Formatter):
    """A formatter whose messages never span lines: arguments cut, control characters escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = cut(escape(record.message), MAX_MESSAGE_CHARS)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and len(a) > MAX_ARG_CHARS for a in args):
            record = logging.makeLogRecord(record.__dict__)  # a copy: other handlers see the record unchanged
            record.args = tuple(cut(a, MAX_ARG_CHARS) if isinstance(a, str) else a for a in args)
        return super().format(record)


def configure(level: str) -> None:
    """Log to standard error at `level`, one escaped line per record, for crmflow and the libraries it uses."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request URL at INFO; keep that for debugging only.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
