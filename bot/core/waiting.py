"""Waiting on an event with a time limit, without losing a cancellation."""

from __future__ import annotations

import asyncio


async def wait_until_set(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; return whether it was set.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives in the
    same loop turn as the event (CPython gh-86296, fixed in 3.12), so a task cancelled at
    shutdown just as a job ended its wait kept running and ``stop()`` waited for it forever.
    ``asyncio.timeout`` tells its own cancellation from an outside one.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
