"""raise_if_cancelled: a stop request that something swallowed still stops the loop."""

from __future__ import annotations

import asyncio

import pytest

from workers.cancellation import raise_if_cancelled


async def test_a_swallowed_cancellation_is_raised_again() -> None:
    swallowed = asyncio.Event()

    async def loop() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed.set()  # as a library may do, by mistake
            raise_if_cancelled()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert swallowed.is_set() and task.cancelled()


async def test_a_task_not_asked_to_stop_goes_on() -> None:
    raise_if_cancelled()  # no exception outside a cancellation
