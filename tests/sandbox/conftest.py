"""Fixtures: a fake clock and sandboxes built on it (`make` custom, `sb` default, `hs` with HubSpot webhooks on).

`hs` sends HubSpot webhooks to the mock receiver with a short batching window and near-instant retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sandbox.config import SandboxConfig
from tests.sandbox.harness import HUBSPOT_FAST, NOTIFY_URL, FakeClock, Harness

MakeSandbox = Callable[..., Awaitable[Harness]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make(clock: FakeClock) -> AsyncIterator[MakeSandbox]:
    """Build sandboxes with config overrides (notify_url defaults to the mock receiver)."""
    opened: list[Harness] = []

    async def build(**overrides: Any) -> Harness:
        harness = Harness(SandboxConfig(**{"notify_url": NOTIFY_URL, **overrides}), clock)
        opened.append(harness)
        return harness

    yield build
    for harness in opened:
        await harness.aclose()


@pytest.fixture
async def sb(make: MakeSandbox) -> Harness:
    return await make()


@pytest.fixture
async def hs(make: MakeSandbox) -> Harness:
    return await make(**HUBSPOT_FAST)
