"""Receive: read a webhook's raw body under a size cap and decode it as JSON. No network I/O of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from receiver.errors import MalformedJsonError, PayloadTooLargeError, UnsupportedMediaTypeError


def require_json(content_type: str | None) -> None:
    """Accept application/json and any application/*+json media type, with or without parameters."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return
    shown = media_type or "none"
    raise UnsupportedMediaTypeError(f"Content-Type must be application/json, got {shown}")


async def read_capped(content_length: str | None, stream: AsyncIterator[bytes], *, max_bytes: int) -> bytes:
    """Collect the body, refusing early (by Content-Length) or as soon as the stream passes `max_bytes`."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise MalformedJsonError("Content-Length is not a number") from None
        if declared > max_bytes:
            raise PayloadTooLargeError(f"body of {declared} bytes is over the {max_bytes}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLargeError(f"body is over the {max_bytes}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Decode UTF-8 JSON with orjson."""
    if not body:
        raise MalformedJsonError("body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJsonError(f"body is not valid JSON: {exc}") from None
