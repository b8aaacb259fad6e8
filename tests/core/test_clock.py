import asyncio

import pytest

from bot.core.clock import SystemClock


async def test_returns_true_when_the_event_is_set() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)

    assert await SystemClock().wait(event, 5.0)


async def test_returns_false_when_the_time_runs_out() -> None:
    assert not await SystemClock().wait(asyncio.Event(), 0.01)


async def test_a_cancellation_arriving_with_the_event_is_not_lost() -> None:
    event = asyncio.Event()
    waiter = asyncio.create_task(SystemClock().wait(event, 5.0))
    await asyncio.sleep(0)  # the waiter is now inside its wait

    event.set()
    waiter.cancel()

    with pytest.raises(asyncio.CancelledError):
        await waiter
