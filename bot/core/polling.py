"""Waiting for a provider job to end: how often to ask, and asking until it has."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from bot.core.clock import Clock
from bot.core.config import JobSettings
from bot.core.errors import (
    DeadlineExceeded,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.core.providers.base import ImageProvider, ProviderJob, ProviderStatus

log = logging.getLogger(__name__)

WAKE_GAP_SECONDS = 1.0


def poll_waits(provider: ImageProvider, settings: JobSettings) -> Iterator[float]:
    """Seconds to wait between polls: the provider's documented schedule, else 1 s doubling to
    5 s (Replicate's own client polls every 0.5 s, too eager for a bot: providers.md §1.8)."""
    if provider.poll_schedule is not None:
        yield from provider.poll_schedule.waits()
        return
    delay = settings.poll_initial_seconds
    while True:
        yield delay
        delay = min(delay * 2, settings.poll_max_seconds)


async def await_completion(
    provider: ImageProvider,
    provider_job_id: str,
    *,
    deadline: float,
    waits: Iterator[float],
    wake: asyncio.Event,
    clock: Clock,
) -> ProviderJob:
    """Ask the provider until the job is finished; ``wake`` (a callback) cuts a wait short.

    Transient poll failures are retried on the next turn. At the deadline the provider job is
    canceled (best effort) and DeadlineExceeded is raised.
    """
    woken = False
    while True:
        wake.clear()
        fetched_at = clock.now()
        try:
            snapshot = await provider.fetch(provider_job_id)
        except (ProviderUnavailable, ProviderTimeout, ProviderRateLimited) as exc:
            log.warning("poll of %s failed, will retry: %s", provider_job_id, exc.detail)
        else:
            if snapshot.status is not ProviderStatus.PENDING:
                return snapshot
        remaining = deadline - clock.now()
        if remaining <= 0:
            with contextlib.suppress(ProviderError):
                await provider.cancel(provider_job_id)
            raise DeadlineExceeded(detail=f"{provider_job_id} still running at the deadline")
        was_woken, woken = woken, await clock.wait(wake, min(next(waits), remaining))
        if woken and was_woken:
            # A callback asks at once, but a flood of them (retries, a proxy that repeats
            # itself) asks the provider no more than once per WAKE_GAP_SECONDS.
            pause = WAKE_GAP_SECONDS - (clock.now() - fetched_at)
            if pause > 0:
                await clock.sleep(min(pause, remaining))
