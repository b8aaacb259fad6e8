"""Time as the core sees it: the current moment, and waiting.

Everything in the core that reads the time or waits goes through one ``Clock``, so tests can
inject one that moves on at once instead of sleeping through back-offs and retry pauses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        """Wait until ``event`` is set or ``timeout`` seconds pass; whether it was set."""


class SystemClock:
    """The real clock: wall time and the event loop's timers."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        """Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives in
        the same loop turn as the event (CPython gh-86296, fixed in 3.12), so a task cancelled
        at shutdown just as a job ended its wait kept running and ``stop()`` waited for it
        forever. ``asyncio.timeout`` tells its own cancellation from an outside one."""
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            return False
        return True
