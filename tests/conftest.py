"""Shared fixtures: a real Redis (the machine's, else a private redis-server), flushed around each test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from arq.connections import ArqRedis

from crmflow.embedded_redis import EmbeddedRedis, redis_reachable
from workers.queue import connect_queue

SAMPLES = Path(__file__).parent / "samples"
# A database of its own on the developer's Redis, so tests never touch db 0.
DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/9"


def sample(name: str) -> Any:
    """A captured (or documented) payload from tests/samples, e.g. sample('zoho/appointment_update')."""
    return orjson.loads((SAMPLES / f"{name}.json").read_bytes())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """CRMFLOW_TEST_REDIS_URL or the local Redis db 9; a private redis-server when neither answers."""
    url = os.environ.get("CRMFLOW_TEST_REDIS_URL", DEFAULT_TEST_REDIS)
    if redis_reachable(url):
        yield url
        return
    with EmbeddedRedis() as server:
        yield server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[ArqRedis]:
    """An arq connection to the test database, empty at the start of the test."""
    connection = connect_queue(redis_url)
    await connection.flushdb()
    try:
        yield connection
    finally:
        await connection.aclose()
