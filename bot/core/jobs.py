"""The job service: accepts requests, drives each job through its provider, and resumes after a
restart. The jobs table is the queue; this module only keeps tasks and wake-up events in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from bot.core.config import JobSettings, QueueSettings, TierSettings
from bot.core.delivery import DeliveryService
from bot.core.domain import (
    MAX_IMAGES,
    MAX_SEED,
    DiscordTarget,
    GenerationRequest,
    Job,
    JobState,
    Member,
    Option,
    OutputFormat,
    Tier,
)
from bot.core.errors import (
    BotError,
    CallbackRejected,
    CreatesNotListed,
    DeadlineExceeded,
    InvalidRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    ResultUnavailable,
)
from bot.core.images import Image, ImageStore
from bot.core.providers.base import ImageProvider, ProviderJob, ProviderStatus
from bot.core.quotas import QuotaService
from bot.core.routing import Route, Router
from bot.core.scheduling import ServiceHistory, Slot, fair_order, startable
from bot.core.storage.jobs import JobRepository
from bot.core.waiting import wait_until_set

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
# A 429 asking for a longer pause than this fails the job rather than hold a worker for long.
MAX_RETRY_WAIT_SECONDS = 60.0
DOWNLOAD_ATTEMPTS = 3
# Discord allows about 5 edits per 5 s per message; one position edit per 5 s per job is calm.
PROGRESS_INTERVAL = 5.0

UNCONFIRMED_CREATE = (
    "The image service did not confirm your request. To make sure you are never charged "
    "twice, the bot did not send it again. Please run /imagine again."
)

INTERRUPTED_CREATE = (
    "The bot restarted while sending your request, and the image service cannot tell whether "
    "it arrived. To make sure you are never charged twice, it was not sent again; you were not "
    "charged. Please run /imagine again."
)
CREATE_NEVER_ARRIVED = (
    "The bot restarted while sending your request, and the image service confirms it never "
    "arrived. You were not charged; please run /imagine again."
)
# Looking for an interrupted create: tries, and the pause before each retry.
LOOKUP_RETRY_DELAYS = (1.0, 3.0)
# States in which the provider's answer is still awaited.
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED})
INTERNAL_ERROR = "An internal error stopped this job. The bot's operator has been told."


def _format_of(image: Image) -> OutputFormat | None:
    try:
        return OutputFormat(image.extension)
    except ValueError:
        return None


class UnconfirmedCreate(BotError):
    """A create whose answer never came: the provider may have made the job."""


# Letters and symbols that render as nothing (Hangul fillers, the braille blank), beside the
# Unicode categories that never render: controls, format characters and separators.
_INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True when nothing in the text would show: a prompt of U+200B and friends is empty."""
    return all(
        char in _INVISIBLE_CHARACTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES
        for char in text
    )


def validate_request(request: GenerationRequest, *, max_prompt_length: int) -> GenerationRequest:
    """Return the request with a cleaned prompt, or raise InvalidRequest."""
    prompt = request.prompt.strip()
    if is_blank(prompt):
        raise InvalidRequest("Please describe the image you want: the prompt is empty.")
    if len(prompt) > max_prompt_length:
        raise InvalidRequest(
            f"Your prompt is {len(prompt)} characters long; the limit is {max_prompt_length}. "
            "Please shorten it."
        )
    given_negative = (request.negative_prompt or "").strip()
    negative = None if is_blank(given_negative) else given_negative
    if negative is not None and len(negative) > max_prompt_length:
        raise InvalidRequest(
            f"Your negative prompt is {len(negative)} characters long; the limit is "
            f"{max_prompt_length}. Please shorten it."
        )
    if not 1 <= request.image_count <= MAX_IMAGES:
        raise InvalidRequest(f"You can ask for 1 to {MAX_IMAGES} images at a time.")
    if request.seed is not None and not 0 <= request.seed <= MAX_SEED:
        raise InvalidRequest(f"The seed must be a whole number from 0 to {MAX_SEED}.")
    return dataclasses.replace(request, prompt=prompt, negative_prompt=negative)


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
    clock: Callable[[], float] = time.time,
) -> ProviderJob:
    """Ask the provider until the job is finished; ``wake`` (a callback) cuts a wait short.

    Transient poll failures are retried on the next turn. At the deadline the provider job is
    canceled (best effort) and DeadlineExceeded is raised.
    """
    while True:
        wake.clear()
        try:
            snapshot = await provider.fetch(provider_job_id)
        except (ProviderUnavailable, ProviderTimeout, ProviderRateLimited) as exc:
            log.warning("poll of %s failed, will retry: %s", provider_job_id, exc.detail)
        else:
            if snapshot.status is not ProviderStatus.PENDING:
                return snapshot
        remaining = deadline - clock()
        if remaining <= 0:
            with contextlib.suppress(ProviderError):
                await provider.cancel(provider_job_id)
            raise DeadlineExceeded(detail=f"{provider_job_id} still running at the deadline")
        await wait_until_set(wake, min(next(waits), remaining))


@dataclass(frozen=True, slots=True)
class Submission:
    """The jobs one /imagine became, and the chosen options its likely provider will not
    apply (the member is told at once; the result says what really happened)."""

    jobs: list[Job]
    not_applied: frozenset[Option]


class JobService:
    def __init__(
        self,
        *,
        repository: JobRepository,
        quotas: QuotaService,
        providers: Mapping[str, ImageProvider],
        router: Router,
        tiers: Mapping[Tier, TierSettings],
        images: ImageStore,
        delivery: DeliveryService,
        settings: JobSettings,
        queue: QueueSettings,
        max_prompt_length: int,
        public_url: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = repository
        self._quotas = quotas
        self._providers = providers
        self._router = router
        self._tiers = tiers
        self._images = images
        self._delivery = delivery
        self._settings = settings
        self._queue = queue
        self._max_prompt_length = max_prompt_length
        self._public_url = public_url.rstrip("/") if public_url else None
        self._clock = clock
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._slots: dict[int, Slot] = {}
        self._history = ServiceHistory()
        self._positions: dict[int, int] = {}
        self._progress_sent: dict[int, tuple[int, float]] = {}
        self._callbacks: dict[int, asyncio.Event] = {}
        self._dispatcher: asyncio.Task[None] | None = None
        self._creates: set[asyncio.Future[ProviderJob | None]] = set()

    # ----------------------------------------------------------------- requests from members

    async def submit(
        self, request: GenerationRequest, target: DiscordTarget, member: Member
    ) -> Submission:
        """Store a validated request as queued jobs holding their credits, and wake the queue.

        Raises InvalidRequest (or a subclass naming the limit) and stores nothing when the
        prompt, a provider's limits, a queue limit or the member's credits say no.
        """
        request = validate_request(request, max_prompt_length=self._max_prompt_length)
        self._router.check(request)
        images_per_job = self._router.images_per_job(request)
        batch = request.image_count // images_per_job
        request = dataclasses.replace(request, image_count=images_per_job)
        reservation = await self._quotas.reservation(
            member, request.tier, images_per_job=images_per_job, jobs=batch
        )
        jobs = await self._jobs.create(
            request,
            target,
            callback_token=secrets.token_urlsafe(32),
            now=self._clock(),
            reservation=reservation,
        )
        if not jobs:
            raise await self._quotas.refusal(member, reservation)
        log.info(
            "jobs %s queued (tier %s, %d credits each)",
            ",".join(str(job.id) for job in jobs),
            request.tier.value,
            reservation.credits,
        )
        self._wake.set()
        routes = self._router.routes(request)
        return Submission(jobs, routes[0].not_applied if routes else frozenset())

    async def queue_position(self, job_id: int) -> int | None:
        """1 for the next job to start; None once it has started."""
        order = fair_order(
            [self._slot(job) for job in await self._jobs.queued()],
            list(self._slots.values()),
            self._history,
        )
        return next((i for i, slot in enumerate(order, 1) if slot.job_id == job_id), None)

    async def member_jobs(self, member: Member) -> list[tuple[Job, int | None]]:
        """A member's unfinished jobs with their queue positions (None: running)."""
        jobs = await self._jobs.member_jobs(guild_id=member.guild_id, user_id=member.user_id)
        return [(job, await self.queue_position(job.id)) for job in jobs]

    async def cancel(self, job_id: int, member: Member) -> Job:
        """Cancel a member's own job and refund it; at the provider too where it is running."""
        job = await self._jobs.get(job_id)
        if job is None or (job.target.guild_id, job.target.user_id) != (
            member.guild_id,
            member.user_id,
        ):
            raise InvalidRequest("That job is not one of yours.")
        if job.state is JobState.SUBMITTING:
            raise InvalidRequest("That job is being sent right now. Try again in a moment.")
        if job.state not in (JobState.QUEUED, JobState.SUBMITTED):
            raise InvalidRequest("That job has already finished.")
        if not await self._jobs.mark_canceled(job.id, now=self._clock()):
            raise InvalidRequest("That job has just moved on and can no longer be canceled.")
        task = self._running.get(job.id)
        if task is not None:
            task.cancel()
        if job.provider is not None and job.provider_job_id is not None:
            with contextlib.suppress(ProviderError):
                await self._providers[job.provider].cancel(job.provider_job_id)
        log.info("job %s canceled by its member", job.id)
        self._wake.set()
        return await self._load(job.id)

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Resume every unfinished job, then start taking queued ones in order."""
        for job in await self._jobs.unfinished():
            if job.state is not JobState.QUEUED:
                self._spawn(job, self._slot(job))
        self._dispatcher = asyncio.create_task(self._dispatch(), name="job-dispatcher")
        self._wake.set()

    async def stop(self) -> None:
        """Cancel in-memory work; every job's state is in the database for the next start."""
        tasks = [task for task in (self._dispatcher, *self._running.values()) if task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Creates in flight finish and record their answer (bounded by the request timeout).
        await asyncio.gather(*self._creates, return_exceptions=True)
        self._dispatcher = None

    async def _dispatch(self) -> None:
        """Start queued jobs in fair order within the running limits; woken by new jobs, ended
        jobs and, for queued jobs' deadlines, by the clock."""
        while True:
            queued = await self._expire_overdue(await self._jobs.queued())
            waiting = [job for job in queued if job.id not in self._running]
            running = list(self._slots.values())
            order = fair_order([self._slot(job) for job in waiting], running, self._history)
            max_running = {
                guild: (await self._quotas.policy(guild)).max_running
                for guild in {slot.guild_id for slot in order}
            }
            chosen = startable(
                order,
                running,
                max_running_per_guild=max_running.__getitem__,
                max_running_per_provider=self._queue.max_running_per_provider,
            )
            by_id = {job.id: job for job in waiting}
            for slot in chosen:
                self._history.record(slot)
                self._spawn(by_id[slot.job_id], slot)
            started = {slot.job_id for slot in chosen}
            await self._report_positions(
                by_id, [slot for slot in order if slot.job_id not in started]
            )
            next_deadline = min((self._deadline(job) for job in waiting), default=None)
            timeout = None if next_deadline is None else max(0.0, next_deadline - self._clock())
            await wait_until_set(self._wake, timeout)
            self._wake.clear()

    async def _expire_overdue(self, queued: list[Job]) -> list[Job]:
        """Fail (and refund) queued jobs past their tier's deadline; return the others."""
        kept: list[Job] = []
        for job in queued:
            if job.id in self._running or self._deadline(job) > self._clock():
                kept.append(job)
                continue
            failed = await self._fail(job, DeadlineExceeded(detail="deadline passed in the queue"))
            self._spawn(failed, self._slot(failed))  # delivers the failure
        return kept

    async def _report_positions(self, jobs: Mapping[int, Job], order: Sequence[Slot]) -> None:
        """Edit each waiting member's queued message when their position changes, at most once
        per PROGRESS_INTERVAL_SECONDS per job (Discord rate-limits message edits)."""
        now = self._clock()
        for position, slot in enumerate(order, 1):
            last = self._progress_sent.get(slot.job_id)
            if last is None:
                # The queued reply itself showed the position; only changes need an edit.
                self._progress_sent[slot.job_id] = (position, now)
                continue
            if last[0] == position or now - last[1] < PROGRESS_INTERVAL:
                continue
            self._progress_sent[slot.job_id] = (position, now)
            await self._delivery.progress(jobs[slot.job_id], position)

    def _spawn(self, job: Job, slot: Slot) -> None:
        if job.id in self._running:
            return
        task = asyncio.create_task(self._run(job.id), name=f"job-{job.id}")
        self._running[job.id] = task
        self._slots[job.id] = slot

        def finished(_: asyncio.Task[None]) -> None:
            self._running.pop(job.id, None)
            self._slots.pop(job.id, None)
            self._callbacks.pop(job.id, None)
            self._progress_sent.pop(job.id, None)
            self._wake.set()

        task.add_done_callback(finished)

    def _slot(self, job: Job) -> Slot:
        provider = job.provider or self._router.preferred(job.request, exclude=job.maybe_created_at)
        return Slot(job.id, job.target.guild_id or 0, job.target.user_id, provider)

    def _deadline(self, job: Job) -> float:
        return job.created_at.timestamp() + self._tiers[job.request.tier].deadline_seconds

    # ----------------------------------------------------------------- one job

    async def _run(self, job_id: int) -> None:
        try:
            job = await self._load(job_id)
            if job.state is JobState.SUBMITTING:
                job = await self._recover_create(job)
            if job.state is JobState.QUEUED:
                await self._delivery.progress(job, None)
                job = await self._submit(job)
            if job.state is JobState.SUBMITTED:
                job = await self._await_result(job)
            if job.state in (JobState.SUCCEEDED, JobState.FAILED):
                await self._delivery.deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: unexpected error", job_id)
            job = await self._load(job_id)
            if job.state in ACTIVE_STATES:
                await self._fail(job, BotError(INTERNAL_ERROR))
                await self._delivery.deliver(await self._load(job_id))

    async def _submit(self, job: Job) -> Job:
        """Create the provider job at the best provider that can take it, moving on to the
        tier's next provider when one is busy or down.

        A provider that may have created the job (a timeout, a 5xx after sending) is never
        asked again, so the provider bills at most once there; the member's credits belong to
        the job, so they are held once whichever provider makes the image.
        """
        last_error: BotError = ProviderUnavailable(detail="no provider available")
        attempts_left = CREATE_ATTEMPTS * len(self._tiers[job.request.tier].providers)
        deadline = self._deadline(job)
        while attempts_left:
            if self._clock() >= deadline:
                return await self._fail(job, DeadlineExceeded(detail="deadline before a create"))
            routes = self._router.routes(job.request, exclude=job.maybe_created_at)
            if not routes:
                # Waiting out a provider's back-off or rate window costs no attempt.
                ready_at = self._router.next_available_at(job.request, exclude=job.maybe_created_at)
                if ready_at is None or ready_at - self._clock() > MAX_RETRY_WAIT_SECONDS:
                    break
                await asyncio.sleep(max(0.0, min(ready_at, deadline) - self._clock()))
                continue
            attempts_left -= 1
            route = routes[0]
            # Counted before any await, so concurrent jobs cannot all pass the rate check.
            self._router.record_create(route.provider.name)
            create = asyncio.ensure_future(self._create_once(route, job))
            self._creates.add(create)
            create.add_done_callback(self._creates.discard)
            try:
                # Shielded: a shutdown must not cut a create between sending it and recording
                # the answer; stop() waits for creates in flight.
                created = await asyncio.shield(create)
            except ProviderError as exc:
                if not exc.provider_fault:
                    return await self._fail(job, exc)
                last_error = exc
            except UnconfirmedCreate as exc:
                last_error = exc
            else:
                submitted = await self._load(job.id)
                if created is None or created.status is ProviderStatus.PENDING:
                    return submitted
                return await self._complete(submitted, created)
            job = await self._load(job.id)
        return await self._fail(job, last_error)

    async def _create_once(self, route: Route, job: Job) -> ProviderJob | None:
        """One create inside the ``submitting`` window, recorded before and after sending.

        Returns None, sending nothing, when the job left the queue meanwhile (the member
        canceled it). Raises the provider's error with the job queued again, or
        UnconfirmedCreate with the provider added to the job's ``maybe_created_at``.
        """
        provider = route.provider
        if not await self._jobs.mark_submitting(
            job.id, provider=provider.name, not_applied=route.not_applied, now=self._clock()
        ):
            return None
        sent_at = self._clock()
        try:
            created = await provider.start(
                route.request, callback_url=self._callback_url(provider.name, job)
            )
        except ProviderError as exc:
            self._router.record_failure(provider.name, exc)
            maybe_created = isinstance(exc, ProviderTimeout) or (
                isinstance(exc, ProviderUnavailable) and exc.request_was_sent
            )
            if not maybe_created:
                await self._jobs.mark_not_submitted(
                    job.id, maybe_created_at=job.maybe_created_at, now=self._clock()
                )
                raise
            # The provider may have created it: never send it there again (§1.8).
            log.warning("job %s: %s may hold an unconfirmed create", job.id, provider.name)
            await self._jobs.mark_not_submitted(
                job.id,
                maybe_created_at=(*job.maybe_created_at, provider.name),
                now=self._clock(),
            )
            raise UnconfirmedCreate(UNCONFIRMED_CREATE, detail=exc.detail) from exc
        self._router.record_success(provider.name, self._clock() - sent_at)
        await self._jobs.mark_submitted(
            job.id, provider=provider.name, provider_job_id=created.id, now=self._clock()
        )
        log.info("job %s submitted to %s as %s", job.id, provider.name, created.id)
        return created

    async def _recover_create(self, job: Job) -> Job:
        """A restart cut a create short, so it may or may not have reached its provider: ask
        the provider and carry on with the job it made, or fail with a refund when it confirms
        there is none or cannot be asked. Never sent again, so never billed twice."""
        assert job.provider is not None
        provider = self._providers.get(job.provider)
        if provider is None:
            return await self._fail(job, BotError(INTERRUPTED_CREATE, detail="provider gone"))
        sent = self._router.route_via(provider, job.request).request
        callback_url = self._callback_url(provider.name, job)
        for delay in (*LOOKUP_RETRY_DELAYS, None):
            try:
                found = await provider.find_created(
                    sent, callback_url=callback_url, sent_after=job.updated_at.timestamp()
                )
                break
            except ProviderError as exc:
                if delay is None or isinstance(exc, CreatesNotListed) or not exc.provider_fault:
                    return await self._fail(
                        job, BotError(INTERRUPTED_CREATE, detail=f"not looked up: {exc.detail}")
                    )
                await asyncio.sleep(delay)
        # Several jobs of one request send the same input; each adopts one that no other owns.
        for candidate in found:
            if await self._jobs.mark_submitted(
                job.id, provider=provider.name, provider_job_id=candidate.id, now=self._clock()
            ):
                log.info(
                    "job %s: found %s at %s after a restart", job.id, candidate.id, provider.name
                )
                return await self._load(job.id)
        return await self._fail(
            job, BotError(CREATE_NEVER_ARRIVED, detail=f"{provider.name} lists no such create")
        )

    async def _await_result(self, job: Job) -> Job:
        """Poll on the provider's schedule until the job ends; a callback cuts a wait short."""
        assert job.provider is not None
        assert job.provider_job_id is not None
        provider = self._providers[job.provider]
        try:
            snapshot = await await_completion(
                provider,
                job.provider_job_id,
                deadline=self._deadline(job),
                waits=poll_waits(provider, self._settings),
                wake=self._callbacks.setdefault(job.id, asyncio.Event()),
                clock=self._clock,
            )
        except ProviderError as exc:
            return await self._fail(job, exc)
        return await self._complete(job, snapshot)

    async def _complete(self, job: Job, snapshot: ProviderJob) -> Job:
        if snapshot.status is ProviderStatus.FAILED:
            assert snapshot.failure is not None
            return await self._fail(job, snapshot.failure)
        assert job.provider is not None
        try:
            images = await self._download(self._providers[job.provider], snapshot)
        except ProviderError as exc:
            return await self._fail(job, exc)
        paths = await self._images.save(f"job-{job.id}", images)
        # A provider may return fewer images than asked (the rest filtered): only those made
        # are charged. The format is the one the provider actually produced.
        made = min(len(images), job.request.image_count)
        await self._jobs.mark_succeeded(
            job.id,
            image_paths=paths,
            effective_prompt=snapshot.prompt_used,
            output_format=_format_of(images[0]) if images else None,
            credits=job.credits * made // job.request.image_count,
            now=self._clock(),
        )
        log.info("job %s succeeded with %d image(s)", job.id, len(paths))
        return await self._load(job.id)

    async def _download(self, provider: ImageProvider, snapshot: ProviderJob) -> list[Image]:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                return await provider.download(snapshot)
            except ResultUnavailable:
                raise
            except ProviderError as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise ResultUnavailable(detail=exc.detail) from exc
                await asyncio.sleep(float(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _fail(self, job: Job, error: BotError) -> Job:
        log.info("job %s failed: %s (%s)", job.id, type(error).__name__, error.detail)
        await self._jobs.mark_failed(job.id, error=error.user_message, now=self._clock())
        return await self._load(job.id)

    async def _load(self, job_id: int) -> Job:
        job = await self._jobs.get(job_id)
        if job is None:
            raise LookupError(f"job {job_id} vanished from the database")
        return job

    def _callback_url(self, provider_name: str, job: Job) -> str | None:
        if self._public_url is None:
            return None
        query = urlencode({"job": job.id, "token": job.callback_token})
        return f"{self._public_url}/callbacks/{provider_name}?{query}"

    # ----------------------------------------------------------------- provider callbacks

    async def handle_callback(
        self,
        provider_name: str,
        *,
        job_id: int,
        token: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> str:
        """Authenticate a callback and wake its job; return what happened, for the log.

        A callback is only a trigger: the job re-reads the provider's own record before
        believing anything (providers.md §1.6), so the body is checked but never trusted.
        """
        provider = self._providers.get(provider_name)
        if provider is None:
            raise CallbackRejected(404, "unknown provider")
        proof = await provider.authenticate_callback(headers, body)
        job = await self._jobs.get(job_id)
        if (
            job is None
            or job.provider != provider_name
            or not hmac.compare_digest(token.encode(), job.callback_token.encode())
        ):
            raise CallbackRejected(404, "unknown job")
        if job.provider_job_id is not None and proof.provider_job_id != job.provider_job_id:
            raise CallbackRejected(400, "callback is about another provider job")
        if job.state not in ACTIVE_STATES:
            return "late"
        if proof.delivery_id is not None and not await self._jobs.remember_delivery(
            provider=provider_name,
            delivery_id=proof.delivery_id,
            job_id=job.id,
            now=self._clock(),
        ):
            return "duplicate"
        self._callbacks.setdefault(job.id, asyncio.Event()).set()
        return "accepted"
