"""Receive: check a webhook's headers, read its raw body under a size cap and a deadline, decode it as JSON."""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from receiver.errors import (
    HeadersTooLargeError,
    MalformedJsonError,
    MalformedRequestError,
    PayloadTooLargeError,
    RequestTimeoutError,
    UnsupportedMediaTypeError,
)

# Names and values of all request headers together (h11, uvicorn's default parser, caps the head at 16 KiB too).
MAX_HEADER_BYTES = 16 * 1024
# Deeper JSON is refused. Zoho's and HubSpot's bodies nest about 7 levels; 64 keeps any code that walks a body
# recursively (repr, logging, serializers) far from Python's recursion limit. orjson itself stops at 1024.
MAX_DEPTH = 64
# A declared Content-Length longer than this many digits cannot be under any cap (and int() has limits of its own).
_MAX_LENGTH_DIGITS = 18
_SHOWN_CHARS = 100


def shown(value: str) -> str:
    """A header value as it may appear in an error message and a log line: printable and at most 100 characters."""
    cut = value[:_SHOWN_CHARS]
    text = cut if cut.isprintable() else repr(cut)[1:-1]
    return text + ("…" if len(value) > _SHOWN_CHARS else "")


def check_header_size(raw_headers: Sequence[tuple[bytes, bytes]], *, max_bytes: int = MAX_HEADER_BYTES) -> None:
    """Refuse a request whose headers (names and values) add up to more than `max_bytes`."""
    size = sum(len(name) + len(value) for name, value in raw_headers)
    if size > max_bytes:
        raise HeadersTooLargeError(f"request headers total {size} bytes, over the {max_bytes}-byte limit")


def require_json(content_types: Sequence[str]) -> None:
    """Accept exactly one Content-Type: application/json or application/*+json, with or without parameters.

    A `charset` parameter is ignored, as RFC 8259 asks: JSON is UTF-8, and a body that is not is refused by
    parse_json whatever the header says.
    """
    if len(content_types) > 1:
        raise UnsupportedMediaTypeError(f"{len(content_types)} Content-Type headers; send exactly one")
    media_type = (content_types[0] if content_types else "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return
    raise UnsupportedMediaTypeError(f"Content-Type must be application/json, got {shown(media_type) or 'none'}")


def declared_length(values: Sequence[str], *, max_bytes: int) -> int | None:
    """The body length the Content-Length header declares (None without one); refused early when over the cap."""
    if not values:
        return None
    if len(set(values)) > 1:
        raise MalformedRequestError("conflicting Content-Length headers")
    value = values[0].strip()
    if not (value.isascii() and value.isdigit()):
        raise MalformedJsonError("Content-Length is not a number")
    if len(value) > _MAX_LENGTH_DIGITS:
        raise PayloadTooLargeError(f"Content-Length is over the {max_bytes}-byte limit")
    declared = int(value)
    if declared > max_bytes:
        raise PayloadTooLargeError(f"body of {declared} bytes is over the {max_bytes}-byte limit")
    return declared


async def read_capped(
    declared: int | None, stream: AsyncIterator[bytes], *, max_bytes: int, timeout_s: float, received: bool = False
) -> bytes:
    """Collect the body within `timeout_s`, refused as soon as it passes `max_bytes`; it must be `declared` long.

    `received`: the whole body is in already (receiver/server.py BODY_RECEIVED), so reading it cannot wait and
    no deadline is armed.
    """
    if received:
        body = await _collect(stream, max_bytes)
    else:
        try:
            async with asyncio.timeout(timeout_s):
                body = await _collect(stream, max_bytes)
        except TimeoutError:
            raise RequestTimeoutError(f"the body did not arrive within {timeout_s:g} s") from None
    if declared is not None and len(body) != declared:
        raise MalformedRequestError(f"body has {len(body)} bytes but Content-Length says {declared}")
    return body


async def _collect(stream: AsyncIterator[bytes], max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"body is over the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Decode UTF-8 JSON with orjson (which refuses nesting deeper than 1024); a duplicate key keeps its last value."""
    if not body:
        raise MalformedJsonError("body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJsonError(_why_not_json(body, exc)) from None


def require_shallow(value: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a decoded body nesting deeper than `max_depth`. Run after authentication: it walks every container."""
    if _deeper_than(value, max_depth):
        raise MalformedJsonError(f"body nests deeper than {max_depth} levels")


def _why_not_json(body: bytes, exc: orjson.JSONDecodeError) -> str:
    # orjson's messages give a position but never the input, so they cannot echo a token.
    if body.startswith(codecs.BOM_UTF8):
        return "body starts with a UTF-8 byte order mark; send UTF-8 JSON without one"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or 0 in body[:2]:
        return "body is UTF-16 or UTF-32; JSON must be sent as UTF-8"
    if exc.msg == "depth limit exceeded":
        return f"body nests deeper than {MAX_DEPTH} levels"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"body is not valid UTF-8 (byte {error.start})"
    return f"body is not valid JSON: {exc}"


def _deeper_than(value: Any, limit: int) -> bool:
    # Iterative on purpose: the point is that nothing recursive ever meets the body.
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        container, depth = stack.pop()
        for child in container.values() if isinstance(container, dict) else container:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False
