"""One job's trip through a provider: create it, wait for it, fetch its images, deliver it.

Every step is recorded in the jobs table before and after it happens, so a restart carries a
job on from where it stopped: a create cut short is looked up, never sent twice.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from bot.core.clock import Clock
from bot.core.config import JobSettings, TierSettings
from bot.core.delivery import DeliveryService
from bot.core.domain import Job, JobState, OutputFormat, Tier
from bot.core.errors import (
    BotError,
    CallbackRejected,
    CreatesNotListed,
    DeadlineExceeded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    ResultUnavailable,
    SafetyBlocked,
)
from bot.core.images import Image, ImageStore
from bot.core.modlog import ModLog
from bot.core.polling import await_completion, poll_waits
from bot.core.providers.base import CallbackProof, ImageProvider, ProviderJob, ProviderStatus
from bot.core.routing import Route, Router
from bot.core.storage.protocols import JobStore

log = logging.getLogger(__name__)

CREATE_ATTEMPTS = 3
# A 429 asking for a longer pause than this fails the job rather than hold a worker for long.
MAX_RETRY_WAIT_SECONDS = 60.0
DOWNLOAD_ATTEMPTS = 3
# Looking for an interrupted create: the pause before each retry.
LOOKUP_RETRY_DELAYS = (1.0, 3.0)
# The member's reply to /imagine comes first; a cog that never says it is shown (it crashed)
# holds the job's own messages back no longer than this.
REPLY_WAIT_SECONDS = 15.0
# States in which the provider's answer is still awaited.
ACTIVE_STATES = frozenset({JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED})

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
INTERNAL_ERROR = "An internal error stopped this job. The bot's operator has been told."
ANSWER_OF_ANOTHER_JOB = (
    "The image service answered with a job the bot already has for another request, so this "
    "one was stopped. You were not charged; please run /imagine again."
)


class UnconfirmedCreate(BotError):
    """A create whose answer never came: the provider may have made the job."""


@dataclass
class _Listening:
    """A job awaiting its provider's answer, as callbacks are checked against it in memory:
    the callback path reads no table while the job waits."""

    provider: str
    provider_job_id: str
    callback_token: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Replicate's webhook-ids seen for this job: a retried delivery changes nothing.
    deliveries: set[str] = field(default_factory=set)


def _format_of(image: Image) -> OutputFormat | None:
    try:
        return OutputFormat(image.extension)
    except ValueError:
        return None


class JobTrip:
    def __init__(
        self,
        *,
        repository: JobStore,
        providers: Mapping[str, ImageProvider],
        router: Router,
        tiers: Mapping[Tier, TierSettings],
        images: ImageStore,
        delivery: DeliveryService,
        settings: JobSettings,
        public_url: str | None,
        clock: Clock,
        mod_log: ModLog | None = None,
    ) -> None:
        self._jobs = repository
        self._mod_log = mod_log
        self._providers = providers
        self._router = router
        self._tiers = tiers
        self._images = images
        self._delivery = delivery
        self._settings = settings
        self._public_url = public_url.rstrip("/") if public_url else None
        self._clock = clock
        self._listening: dict[int, _Listening] = {}
        self._replies: dict[str, asyncio.Event] = {}
        self._creates: set[asyncio.Future[tuple[Job, ProviderJob] | None]] = set()

    def deadline(self, job: Job) -> float:
        return job.created_at.timestamp() + self._tiers[job.request.tier].deadline_seconds

    # ----------------------------------------------------------------- the member's reply

    def expect_reply(self, interaction_token: str) -> None:
        """The member's reply to the command is on its way: hold the job's own messages (its
        progress, its result) until it is shown, so none of them races ahead of it. The job
        itself does not wait: its create goes out meanwhile."""
        self._replies.setdefault(interaction_token, asyncio.Event())

    def reply_shown(self, interaction_token: str) -> None:
        reply = self._replies.pop(interaction_token, None)
        if reply is not None:
            reply.set()

    def reply_pending(self, job: Job) -> bool:
        return job.target.interaction_token in self._replies

    async def _show_started(self, job: Job, submitting: asyncio.Future[Job]) -> None:
        """Tell the member their image is being made, once their reply is shown, unless it is
        already made by then: the result comes next, and a status saying "Generating" after
        it would be wrong (and one more Discord call per job under a burst)."""
        await self._reply_first(job)
        if not _made(submitting):
            await self._delivery.progress(job, None)

    async def _reply_first(self, job: Job) -> None:
        reply = self._replies.get(job.target.interaction_token)
        if reply is not None and not await self._clock.wait(reply, REPLY_WAIT_SECONDS):
            self.reply_shown(job.target.interaction_token)

    # ----------------------------------------------------------------- callbacks

    def hear(self, job_id: int, provider_name: str, token: str, proof: CallbackProof) -> str | None:
        """Check an authenticated callback against a job awaiting its result and wake it; what
        happened, for the log. None when no such job is waiting here (the table decides)."""
        listening = self._listening.get(job_id)
        if listening is None:
            return None
        if listening.provider != provider_name or not hmac.compare_digest(
            token.encode(), listening.callback_token.encode()
        ):
            raise CallbackRejected(404, "unknown job")
        if proof.provider_job_id != listening.provider_job_id:
            raise CallbackRejected(400, "callback is about another provider job")
        if proof.delivery_id is not None:
            if proof.delivery_id in listening.deliveries:
                return "duplicate"
            listening.deliveries.add(proof.delivery_id)
        if not proof.may_have_ended:
            return "still running"
        listening.wake.set()
        return "accepted"

    async def settle(self) -> None:
        """Creates in flight finish and record their answer (bounded by the request timeout)."""
        await asyncio.gather(*self._creates, return_exceptions=True)

    # ----------------------------------------------------------------- the trip

    async def run(self, job: Job) -> None:
        """Carry ``job`` (as last read or written) on from its state to its delivery."""
        job_id = job.id
        try:
            if job.state is JobState.SUBMITTING:
                job = await self._recover_create(job)
            if job.state is JobState.QUEUED:
                # The create goes out at once; the member's status changes beside it, after
                # their reply (the edit waits on Discord, and its rate limits).
                submitting = asyncio.ensure_future(self._submit(job))
                job, _ = await asyncio.gather(submitting, self._show_started(job, submitting))
            if job.state is JobState.SUBMITTED:
                job = await self._await_result(job)
            if job.state in (JobState.SUCCEEDED, JobState.FAILED):
                await self._reply_first(job)
                await self._delivery.deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: unexpected error", job_id)
            job = await self._load(job_id)
            if job.state in ACTIVE_STATES:
                await self.fail(job, BotError(INTERNAL_ERROR))
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
        deadline = self.deadline(job)
        while attempts_left:
            if self._clock.now() >= deadline:
                return await self.fail(job, DeadlineExceeded(detail="deadline before a create"))
            routes = self._router.routes(job.request, exclude=job.maybe_created_at)
            if not routes:
                # Waiting out a provider's back-off or rate window costs no attempt.
                ready_at = self._router.next_available_at(job.request, exclude=job.maybe_created_at)
                if ready_at is None or ready_at - self._clock.now() > MAX_RETRY_WAIT_SECONDS:
                    break
                await self._clock.sleep(max(0.0, min(ready_at, deadline) - self._clock.now()))
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
                outcome = await asyncio.shield(create)
            except ProviderError as exc:
                if not exc.provider_fault:
                    return await self.fail(job, exc)
                last_error = exc
            except UnconfirmedCreate as exc:
                last_error = exc
            else:
                if outcome is None:  # canceled before it was sent
                    return await self._load(job.id)
                submitted, created = outcome
                if created.status is ProviderStatus.PENDING:
                    return submitted
                return await self._complete(submitted, created)
            job = await self._load(job.id)  # queued again, perhaps with maybe_created_at
        return await self.fail(job, last_error)

    async def _create_once(self, route: Route, job: Job) -> tuple[Job, ProviderJob] | None:
        """One create inside the ``submitting`` window, recorded before and after sending.

        Returns the submitted job and the provider's answer, or None, sending nothing, when
        the job left the queue meanwhile (the member canceled it). Raises the provider's error
        with the job queued again, or UnconfirmedCreate with the provider added to the job's
        ``maybe_created_at``.
        """
        provider = route.provider
        if not await self._jobs.mark_submitting(
            job.id, provider=provider.name, not_applied=route.not_applied, now=self._clock.now()
        ):
            return None
        sent_at = self._clock.now()
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
                    job.id, maybe_created_at=job.maybe_created_at, now=self._clock.now()
                )
                raise
            # The provider may have created it: never send it there again (§1.8).
            log.warning("job %s: %s may hold an unconfirmed create", job.id, provider.name)
            await self._jobs.mark_not_submitted(
                job.id,
                maybe_created_at=(*job.maybe_created_at, provider.name),
                now=self._clock.now(),
            )
            raise UnconfirmedCreate(UNCONFIRMED_CREATE, detail=exc.detail) from exc
        self._router.record_success(provider.name, self._clock.now() - sent_at)
        submitted = await self._jobs.mark_submitted(
            job.id, provider=provider.name, provider_job_id=created.id, now=self._clock.now()
        )
        if submitted is None:
            # The provider named a job another of ours holds: whose image it makes cannot be
            # told, so this job ends refunded rather than show someone else's.
            raise ProviderRejected(ANSWER_OF_ANOTHER_JOB, detail=f"{created.id} is taken")
        log.info("job %s submitted to %s as %s", job.id, provider.name, created.id)
        return submitted, created

    async def _recover_create(self, job: Job) -> Job:
        """A restart cut a create short, so it may or may not have reached its provider: ask
        the provider and carry on with the job it made, or fail with a refund when it confirms
        there is none or cannot be asked. Never sent again, so never billed twice."""
        assert job.provider is not None
        provider = self._providers.get(job.provider)
        if provider is None:
            return await self.fail(job, BotError(INTERRUPTED_CREATE, detail="provider gone"))
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
                    return await self.fail(
                        job, BotError(INTERRUPTED_CREATE, detail=f"not looked up: {exc.detail}")
                    )
                await self._clock.sleep(delay)
        # Several jobs of one request send the same input; each adopts one that no other owns.
        for candidate in found:
            adopted = await self._jobs.mark_submitted(
                job.id, provider=provider.name, provider_job_id=candidate.id, now=self._clock.now()
            )
            if adopted is not None:
                log.info(
                    "job %s: found %s at %s after a restart", job.id, candidate.id, provider.name
                )
                return adopted
        return await self.fail(
            job, BotError(CREATE_NEVER_ARRIVED, detail=f"{provider.name} lists no such create")
        )

    async def _await_result(self, job: Job) -> Job:
        """Poll on the provider's schedule until the job ends; a callback cuts a wait short."""
        assert job.provider is not None
        assert job.provider_job_id is not None
        provider = self._providers[job.provider]
        listening = _Listening(job.provider, job.provider_job_id, job.callback_token)
        self._listening[job.id] = listening
        try:
            snapshot = await await_completion(
                provider,
                job.provider_job_id,
                deadline=self.deadline(job),
                waits=poll_waits(provider, self._settings),
                wake=listening.wake,
                clock=self._clock,
            )
        except ProviderError as exc:
            return await self.fail(job, exc)
        finally:
            del self._listening[job.id]
        return await self._complete(job, snapshot)

    async def _complete(self, job: Job, snapshot: ProviderJob) -> Job:
        if snapshot.status is ProviderStatus.FAILED:
            assert snapshot.failure is not None
            return await self.fail(job, snapshot.failure)
        assert job.provider is not None
        try:
            images = await self._download(self._providers[job.provider], snapshot)
        except ProviderError as exc:
            return await self.fail(job, exc)
        paths = await self._images.save(f"job-{job.id}", images)
        # A provider may return fewer images than asked (the rest filtered): only those made
        # are charged. The format is the one the provider actually produced.
        made = min(len(images), job.request.image_count)
        succeeded = await self._jobs.mark_succeeded(
            job.id,
            image_paths=paths,
            effective_prompt=snapshot.prompt_used,
            output_format=_format_of(images[0]) if images else None,
            credits=job.credits * made // job.request.image_count,
            now=self._clock.now(),
        )
        log.info("job %s succeeded with %d image(s)", job.id, len(paths))
        # None: canceled while the images came; they stay on disk, the credits are refunded.
        return succeeded or await self._load(job.id)

    async def _download(self, provider: ImageProvider, snapshot: ProviderJob) -> list[Image]:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                return await provider.download(snapshot)
            except ResultUnavailable:
                raise
            except ProviderError as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise ResultUnavailable(detail=exc.detail) from exc
                await self._clock.sleep(float(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def fail(self, job: Job, error: BotError) -> Job:
        log.info("job %s failed: %s (%s)", job.id, type(error).__name__, error.detail)
        blocked = isinstance(error, SafetyBlocked)
        failed = await self._jobs.mark_failed(
            job.id,
            error=error.user_message,
            now=self._clock.now(),
            outcome="safety_blocked" if blocked else None,
        )
        # Only the transition that ended it reports, so a job is reported once.
        if blocked and failed is not None and self._mod_log is not None:
            self._mod_log.safety_blocked(failed)
        # None: it had already ended (canceled meanwhile); the table says how.
        return failed or await self._load(job.id)

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


def _made(submitting: asyncio.Future[Job]) -> bool:
    """Whether the create has ended with the job's outcome in: its image, or its failure."""
    if not submitting.done() or submitting.cancelled() or submitting.exception() is not None:
        return False
    return submitting.result().state in (JobState.SUCCEEDED, JobState.FAILED)
