"""Delivery: show a finished request to its member through a Publisher port, and record it.

A request (one ``/imagine``) may be several jobs; the last of them to end concludes it for all
(so its images are one message, posted when the last one is in). Images go to the job's
channel, else to the member's own private response to the command (the interaction's
``@original`` message, reachable for 15 minutes), else to a direct message. A failure is
never posted in the channel (it may quote a blocked prompt): it goes to the member's private
response, else to a direct message. The member's private status ends in the outcome either
way: "Done" with a link to the post, or the failure in plain words. When no route reaches
the member, the jobs are kept as undeliverable with their images on disk.

Once a job has taken the private route it never goes back to the channel: the edit may
already show it, and a channel that works again would post a second copy.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.core.clock import Clock, SystemClock
from bot.core.domain import Job, JobState
from bot.core.errors import BotError, ChannelUnavailable, DeliveryFailed
from bot.core.fitting import fitted
from bot.core.images import ImageStore
from bot.core.storage.protocols import JobStore

log = logging.getLogger(__name__)

# Transient errors (Discord 5xx after discord.py's own retries, a dropped connection) get a
# few more tries with this backoff before the request is marked undeliverable.
RETRY_DELAYS_SECONDS = (2.0, 10.0, 30.0)
# What a direct message may carry: the upload limit outside a boosted server (a server's
# boost raises its interactions' attachment_size_limit, not a DM's).
DIRECT_UPLOAD_LIMIT = 10 * 2**20
_IN_PROGRESS = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED)


@dataclass(frozen=True, slots=True)
class Attachment:
    """A stored image to upload: the publisher streams it from ``path``."""

    path: Path
    size: int

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True, slots=True)
class Result:
    """A finished job as it is shown: its images as uploaded (re-encoded where the upload
    limit asked for it, said in ``notes``), the names of any that could not be made to fit
    (kept on disk), or, for a failed job, no images at all."""

    job: Job
    attachments: tuple[Attachment, ...] = ()
    oversized: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a request's images were posted in a channel."""

    message_id: int
    jump_url: str


@dataclass(frozen=True, slots=True)
class ModLogReport:
    """What the mod log is told about a refused prompt or a safety-blocked job: who, when,
    what refused it (``details``: label and value, e.g. the blocklist entry or the job and
    its provider) and the prompt, which the publisher hides behind a spoiler."""

    title: str
    user_id: int
    at: datetime
    prompt: str
    details: tuple[tuple[str, str], ...] = ()
    # Labelled texts members wrote (a shared prompt's title, a report's reason): shown
    # escaped, as written, never interpreted as markdown.
    quoted: tuple[tuple[str, str], ...] = ()


class Publisher(Protocol):
    """What the core needs from Discord."""

    async def post_in_channel(self, results: Sequence[Result]) -> Posted:
        """Post a request's images as one message in its channel. Raise ChannelUnavailable
        when the channel is gone or closed to the bot."""

    async def show_privately(self, results: Sequence[Result], *, by_setting: bool = False) -> None:
        """Make the member's private response show these results of one request, replacing
        what it showed; ``by_setting``: the server shows results privately (else the channel
        could not be used). Raise DeliveryFailed when the interaction token no longer works."""

    async def send_direct(self, results: Sequence[Result]) -> None:
        """Send the member a direct message with these results (images or failures). Raise
        DeliveryFailed when the member cannot be messaged (DMs closed, no shared server)."""

    async def show_outcome(self, job: Job, posted: Posted | None, failed: Sequence[Job]) -> None:
        """End the member's private status: "Done" linking to ``posted`` and/or the
        failures in plain words. Raise DeliveryFailed when the interaction token is gone."""

    async def publish_progress(self, job: Job, position: int | None) -> None:
        """Update the member's queued message: a new position, or None once it started."""

    async def report_to_mod_log(self, channel_id: int, report: ModLogReport) -> None:
        """Post a report in the server's mod-log channel, pinging nobody. Raise
        ChannelUnavailable when the channel is gone or closed to the bot."""


class DeliveryService:
    def __init__(
        self,
        publisher: Publisher,
        images: ImageStore,
        repository: JobStore,
        *,
        clock: Clock | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
        private_results: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        self._publisher = publisher
        # Whether a guild shows results to their requesters only (/imagine-admin settings
        # results); such results take the private route from the start.
        self._private_results = private_results
        self._images = images
        self._jobs = repository
        self._clock = clock or SystemClock()
        self._retry_delays = retry_delays
        # One conclusion or edit of a request's private response at a time: a progress edit
        # never lands on top of its outcome, and two jobs of a request ending together do
        # not both post it.
        self._responses: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def deliver(self, job: Job) -> None:
        """``job`` has ended (succeeded or failed): once every job of its request has, show
        the request to its member and mark each job delivered or undeliverable. Earlier jobs
        of the request wait, as they are, for the last one."""
        async with self._response_lock(job):
            jobs = [job] if job.batch_size == 1 else await self._siblings(job)
            if any(sibling.state in _IN_PROGRESS for sibling in jobs):
                return
            ending = [sibling for sibling in jobs if sibling.state in _ENDED]
            if ending:
                await self._conclude(ending)

    async def progress(self, job: Job, position: int | None) -> None:
        """Best effort: a lost progress edit costs nothing, so failures are only logged.
        Nothing is sent once the request has begun to conclude."""
        async with self._response_lock(job):
            # Read, not taken from the caller: a position report sent just as the job started
            # must not land on the outcome the member's status already shows.
            jobs = (
                [await self._jobs.get(job.id) or job]
                if job.batch_size == 1
                else (await self._siblings(job))
            )
            if any(
                sibling.state not in _IN_PROGRESS or sibling.private_delivery_at is not None
                for sibling in jobs
            ):
                return
            try:
                await self._publisher.publish_progress(job, position)
            except Exception:
                log.warning("job %s: progress update failed", job.id, exc_info=True)

    async def _siblings(self, job: Job) -> list[Job]:
        """Every job of ``job``'s request (they share its interaction token)."""
        return await self._jobs.request_jobs(job.target.interaction_token)

    async def _conclude(self, jobs: list[Job]) -> None:
        for attempt, delay in enumerate((*self._retry_delays, None)):
            if attempt:
                # A failed attempt may have sent the request down the private route.
                jobs = [await self._jobs.get(job.id) or job for job in jobs]
                jobs = [job for job in jobs if job.state in _ENDED]
                if not jobs:  # the images were posted and nothing else was left to tell
                    return
            try:
                await self._show(jobs)
                return
            except DeliveryFailed as exc:
                await self._give_up(jobs, exc.detail or exc.user_message)
                return
            except Exception:
                if delay is None:
                    log.exception("request of job %s: giving up delivery", jobs[0].id)
                    await self._give_up(jobs, "posting kept failing")
                    return
                log.warning(
                    "request of job %s: posting failed, retry in %ss",
                    jobs[0].id,
                    delay,
                    exc_info=True,
                )
                await self._clock.sleep(delay)

    async def _show(self, jobs: list[Job]) -> None:
        made = [job for job in jobs if job.state is JobState.SUCCEEDED]
        failed = [job for job in jobs if job.state is JobState.FAILED]
        first = jobs[0]
        if not made:
            await self._tell_privately(first, [Result(job) for job in failed])
            return
        results = await self._results(made)
        posted: Posted | None = None
        private = await self._private(first)
        if all(job.private_delivery_at is None for job in made) and not private:
            try:
                posted = await self._publisher.post_in_channel(results)
            except ChannelUnavailable as exc:
                log.warning("job %s: %s; trying the member privately", first.id, exc.detail)
        if posted is None:
            for job in made:
                # Recorded before the edit: a restart repeats the same edit, never the channel.
                await self._jobs.mark_private_delivery(job.id, now=self._clock.now())
            await self._tell_privately(
                first, [*results, *(Result(job) for job in failed)], by_setting=private
            )
            return
        for job in made:
            await self._jobs.mark_delivered(
                job.id, now=self._clock.now(), message_id=posted.message_id
            )
        try:
            await self._status_or_direct(first, posted, failed)
        except DeliveryFailed as exc:
            # The images are posted; only the failures' notice found no route.
            await self._give_up(failed, exc.detail or exc.user_message)
            return
        for job in failed:
            await self._jobs.mark_delivered(job.id, now=self._clock.now())

    async def _tell_privately(
        self, first: Job, results: list[Result], *, by_setting: bool = False
    ) -> None:
        """Images or failures to the member alone: their private response while its token
        works, else a direct message. Raises DeliveryFailed when neither reaches them."""
        refusal = "the interaction token has expired"
        if self._token_works(first):
            try:
                if any(result.job.error is None for result in results):
                    await self._publisher.show_privately(results, by_setting=by_setting)
                else:
                    await self._publisher.show_outcome(first, None, [r.job for r in results])
            except DeliveryFailed as exc:
                refusal = exc.detail or exc.user_message
            else:
                await self._mark_all_delivered(results)
                return
        made = [result.job for result in results if result.attachments]
        if made and first.target.attachment_size_limit > DIRECT_UPLOAD_LIMIT:
            refitted = await self._results(made, limit=DIRECT_UPLOAD_LIMIT)
            results = [*refitted, *(result for result in results if not result.attachments)]
        try:
            await self._publisher.send_direct(results)
        except DeliveryFailed as exc:
            raise DeliveryFailed(detail=f"{refusal}; {exc.detail or exc.user_message}") from exc
        await self._mark_all_delivered(results)

    async def _status_or_direct(self, first: Job, posted: Posted, failed: list[Job]) -> None:
        """End the member's status with the link to the post (and any failures); when the
        status can no longer be edited, failures still reach them by direct message."""
        if self._token_works(first):
            try:
                await self._publisher.show_outcome(first, posted, failed)
                return
            except DeliveryFailed:
                log.info("job %s: the status could not be ended, the token is gone", first.id)
            except Exception:
                # The images are posted and recorded: retrying the whole request would only
                # lose the link, so the status stays as it was and failures go by DM.
                log.warning("job %s: the status could not be ended", first.id, exc_info=True)
        if failed:
            await self._publisher.send_direct([Result(job) for job in failed])

    async def _mark_all_delivered(self, results: Sequence[Result]) -> None:
        for result in results:
            await self._jobs.mark_delivered(result.job.id, now=self._clock.now())

    async def _give_up(self, jobs: Sequence[Job], reason: str) -> None:
        for job in jobs:
            log.warning("job %s undeliverable: %s", job.id, reason)
            await self._jobs.mark_undeliverable(job.id, reason=reason, now=self._clock.now())

    async def _private(self, job: Job) -> bool:
        if self._private_results is None or job.target.guild_id is None:
            return False
        return await self._private_results(job.target.guild_id)

    def _token_works(self, job: Job) -> bool:
        return job.target.interaction_expires_at > datetime.fromtimestamp(self._clock.now(), UTC)

    async def kept(self, job: Job, *, limit: int) -> Result:
        """A finished job's stored images as they can be uploaded again now (/jobs' Show),
        within ``limit``, the upload limit of the interaction that asks."""
        [result] = await self._results([job], limit=limit)
        return result

    async def _results(self, made: Sequence[Job], *, limit: int | None = None) -> list[Result]:
        """Each job's images as they will be uploaded. A message's files must fit the upload
        limit together (Discord refuses the whole message with 413, code 40005, otherwise);
        when they do not, each file gets an equal share and one over its share is re-encoded
        to fit it (the original stays on disk). Only a file that cannot be made to fit is
        left out, named."""
        if limit is None:
            limit = made[0].target.attachment_size_limit
        sized: list[tuple[Job, list[tuple[Path, int]]]] = []
        for job in made:
            files = []
            for path in job.image_paths:
                try:
                    files.append((path, await self._images.size(path)))
                except OSError as exc:
                    raise DeliveryFailed(detail=f"stored image {path} unreadable: {exc}") from exc
            sized.append((job, files))
        count = sum(len(files) for _, files in sized)
        total = sum(size for _, files in sized for _, size in files)
        share = limit if total <= limit else limit // max(count, 1)
        results: list[Result] = []
        for job, files in sized:
            attachments: list[Attachment] = []
            oversized: list[str] = []
            notes: list[str] = []
            for path, size in files:
                if size <= share:
                    attachments.append(Attachment(path, size))
                    continue
                try:
                    copy = await fitted(path, share, upload_limit=limit)
                except (BotError, OSError) as exc:  # OSError: Pillow cannot read the file
                    log.warning("job %s: %s cannot be made to fit: %s", job.id, path.name, exc)
                    oversized.append(path.name)
                    continue
                attachments.append(Attachment(copy.path, copy.size))
                if copy.note and copy.note not in notes:
                    notes.append(copy.note)
            results.append(Result(job, tuple(attachments), tuple(oversized), tuple(notes)))
        return results

    def _response_lock(self, job: Job) -> asyncio.Lock:
        token = job.target.interaction_token
        lock = self._responses.get(token)
        if lock is None:
            lock = self._responses[token] = asyncio.Lock()
        return lock


_ENDED = (JobState.SUCCEEDED, JobState.FAILED)
