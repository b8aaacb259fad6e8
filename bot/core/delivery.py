"""Delivery: post a finished job's result through a Publisher port and record the outcome.

Two routes, in order: the job's channel, then the member's own private response to the
command (the interaction's ``@original`` message, reachable for 15 minutes). The private route
is an edit that shows every privately delivered result of the request at once, so repeating
it after a crash shows the same thing again instead of sending a second message. Once a job
has taken the private route it never goes back to the channel: the edit may already show it,
and a channel that works again would post a second copy.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.core.clock import Clock, SystemClock
from bot.core.domain import Job, JobState
from bot.core.errors import ChannelUnavailable, DeliveryFailed
from bot.core.images import ImageStore
from bot.core.storage.protocols import JobStore

log = logging.getLogger(__name__)

# Transient errors (Discord 5xx after discord.py's own retries, a dropped connection) get a
# few more tries with this backoff before the job is marked undeliverable.
RETRY_DELAYS_SECONDS = (2.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A stored image to upload: the publisher streams it from ``path``; ``size`` (from the
    file's metadata) decides whether it fits the upload limit without reading it."""

    path: Path
    size: int

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class Result:
    """A finished job as it is shown: its images that fit the upload limit, the names of
    those that do not (kept on disk), or, for a failed job, no images at all."""

    job: Job
    attachments: tuple[Attachment, ...] = ()
    oversized: tuple[str, ...] = ()


class Publisher(Protocol):
    """What the core needs from Discord."""

    async def post_in_channel(self, result: Result) -> None:
        """Post the result in the job's channel. Raise ChannelUnavailable when the channel
        is gone or closed to the bot."""

    async def show_privately(self, results: Sequence[Result]) -> None:
        """Make the member's private response show these results of one request, replacing
        what it showed. Raise DeliveryFailed when the interaction token no longer works."""

    async def publish_progress(self, job: Job, position: int | None) -> None:
        """Update the member's queued message: a new position, or None once it started."""


def within_upload_limit(results: Sequence[Result], limit: int) -> list[Result]:
    """One message's files must fit the upload limit together (Discord answers 413 40005
    otherwise); files past it are named as oversized instead, kept on disk."""
    room = limit
    fitted: list[Result] = []
    for result in results:
        kept: list[Attachment] = []
        named = list(result.oversized)
        for attachment in result.attachments:
            if attachment.size <= room:
                kept.append(attachment)
                room -= attachment.size
            else:
                named.append(attachment.filename)
        fitted.append(Result(result.job, tuple(kept), tuple(named)))
    return fitted


class DeliveryService:
    def __init__(
        self,
        publisher: Publisher,
        images: ImageStore,
        repository: JobStore,
        *,
        clock: Clock | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
    ) -> None:
        self._publisher = publisher
        self._images = images
        self._jobs = repository
        self._clock = clock or SystemClock()
        self._retry_delays = retry_delays
        # One edit of a member's private response at a time, so a progress edit can never
        # land on top of a result shown there.
        self._responses: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def deliver(self, job: Job) -> None:
        """Post a succeeded or failed job once, then mark it delivered or undeliverable."""
        for attempt, delay in enumerate((*self._retry_delays, None)):
            if attempt:
                # A failed attempt may have sent the job down the private route: reread it.
                job = await self._jobs.get(job.id) or job
            try:
                await self._publish(job)
            except DeliveryFailed as exc:
                log.warning("job %s undeliverable: %s", job.id, exc.detail or exc.user_message)
                await self._jobs.mark_undeliverable(
                    job.id, reason=exc.detail or exc.user_message, now=self._clock.now()
                )
                return
            except Exception:
                if delay is None:
                    log.exception("job %s: giving up delivery", job.id)
                    await self._jobs.mark_undeliverable(
                        job.id, reason="posting kept failing", now=self._clock.now()
                    )
                    return
                log.warning("job %s: posting failed, retry in %ss", job.id, delay, exc_info=True)
                await self._clock.sleep(delay)
            else:
                await self._jobs.mark_delivered(job.id, now=self._clock.now())
                return

    async def progress(self, job: Job, position: int | None) -> None:
        """Best effort: a lost progress edit costs nothing, so failures are only logged. None
        is sent once the response shows a result of the request."""
        async with self._response_lock(job):
            if job.batch_size > 1 and any(
                sibling.private_delivery_at is not None
                for sibling in await self._jobs.request_jobs(job.target.interaction_token)
            ):
                return
            try:
                await self._publisher.publish_progress(job, position)
            except Exception:
                log.warning("job %s: progress update failed", job.id, exc_info=True)

    async def _publish(self, job: Job) -> None:
        result = await self._result(job)
        refusal: str | None = "the channel refused it before"
        if job.private_delivery_at is None:
            # Like the private route's, one message's files must fit the limit together.
            [fitted] = within_upload_limit([result], job.target.attachment_size_limit)
            try:
                await self._publisher.post_in_channel(fitted)
                return
            except ChannelUnavailable as exc:
                log.warning("job %s: %s; trying the member's private response", job.id, exc.detail)
                refusal = exc.detail
        if job.target.interaction_expires_at <= datetime.fromtimestamp(self._clock.now(), UTC):
            raise DeliveryFailed(detail=f"{refusal}; the interaction token has expired")
        async with self._response_lock(job):
            # Recorded before the edit: whichever job of the request edits last shows them all.
            await self._jobs.mark_private_delivery(job.id, now=self._clock.now())
            shown = [
                await self._result(sibling) if sibling.id != job.id else result
                for sibling in await self._jobs.request_jobs(job.target.interaction_token)
                if sibling.id == job.id or sibling.private_delivery_at is not None
            ]
            await self._publisher.show_privately(
                within_upload_limit(shown, job.target.attachment_size_limit)
            )

    async def _result(self, job: Job) -> Result:
        if job.error is not None or job.state is JobState.FAILED:
            return Result(job)
        attachments: list[Attachment] = []
        oversized: list[str] = []
        for path in job.image_paths:
            try:
                size = await self._images.size(path)
            except OSError as exc:
                raise DeliveryFailed(detail=f"stored image {path} unreadable: {exc}") from exc
            # Discord rejects the whole message when one file is over the limit the
            # interaction advertised (attachment_size_limit), so oversized files are named instead.
            if size > job.target.attachment_size_limit:
                oversized.append(path.name)
            else:
                attachments.append(Attachment(path, size))
        return Result(job, tuple(attachments), tuple(oversized))

    def _response_lock(self, job: Job) -> asyncio.Lock:
        token = job.target.interaction_token
        lock = self._responses.get(token)
        if lock is None:
            lock = self._responses[token] = asyncio.Lock()
        return lock
