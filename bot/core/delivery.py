"""Delivery: post a finished job's result through a Publisher port and record the outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.domain import Job, JobState
from bot.core.errors import DeliveryFailed
from bot.core.images import ImageStore
from bot.core.storage.jobs import JobRepository

log = logging.getLogger(__name__)

# Transient errors (Discord 5xx after discord.py's own retries, a dropped connection) get a
# few more tries with this backoff before the job is marked undeliverable.
RETRY_DELAYS_SECONDS = (2.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    data: bytes


class Publisher(Protocol):
    """What the core needs from Discord. Raise DeliveryFailed when no destination can work."""

    async def publish_images(
        self, job: Job, attachments: Sequence[Attachment], oversized: Sequence[str]
    ) -> None: ...

    async def publish_failure(self, job: Job) -> None: ...

    async def publish_progress(self, job: Job, position: int | None) -> None:
        """Update the member's queued message: a new position, or None once it started."""


class DeliveryService:
    def __init__(
        self,
        publisher: Publisher,
        images: ImageStore,
        repository: JobRepository,
        *,
        clock: Callable[[], float] = time.time,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
    ) -> None:
        self._publisher = publisher
        self._images = images
        self._jobs = repository
        self._clock = clock
        self._retry_delays = retry_delays

    async def deliver(self, job: Job) -> None:
        """Post a succeeded or failed job once, then mark it delivered or undeliverable."""
        for delay in (*self._retry_delays, None):
            try:
                await self._publish(job)
            except DeliveryFailed as exc:
                log.warning("job %s undeliverable: %s", job.id, exc.detail or exc.user_message)
                await self._jobs.mark_undeliverable(
                    job.id, reason=exc.detail or exc.user_message, now=self._clock()
                )
                return
            except Exception:
                if delay is None:
                    log.exception("job %s: giving up delivery", job.id)
                    await self._jobs.mark_undeliverable(
                        job.id, reason="posting kept failing", now=self._clock()
                    )
                    return
                log.warning("job %s: posting failed, retry in %ss", job.id, delay, exc_info=True)
                await asyncio.sleep(delay)
            else:
                await self._jobs.mark_delivered(job.id, now=self._clock())
                return

    async def progress(self, job: Job, position: int | None) -> None:
        """Best effort: a lost progress edit costs nothing, so failures are only logged."""
        try:
            await self._publisher.publish_progress(job, position)
        except Exception:
            log.warning("job %s: progress update failed", job.id, exc_info=True)

    async def _publish(self, job: Job) -> None:
        if job.state is JobState.FAILED:
            await self._publisher.publish_failure(job)
            return
        attachments: list[Attachment] = []
        oversized: list[str] = []
        for path in job.image_paths:
            try:
                data = await self._images.read(path)
            except OSError as exc:
                raise DeliveryFailed(detail=f"stored image {path} unreadable: {exc}") from exc
            # Discord rejects the whole message when one file is over the limit the
            # interaction advertised (attachment_size_limit), so oversized files are named instead.
            if len(data) > job.target.attachment_size_limit:
                oversized.append(path.name)
            else:
                attachments.append(Attachment(path.name, data))
        await self._publisher.publish_images(job, attachments, oversized)
