"""What members and providers ask of the jobs: submit, cancel, positions, callbacks.

The jobs table is the queue and the truth. The dispatcher (bot/core/dispatcher.py) starts
waiting jobs in fair order from an index of them in memory; each job's trip through its
provider is bot/core/job_trip.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from bot.core.blocklist import BlocklistService
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.delivery import DeliveryService
from bot.core.dispatcher import PROGRESS_INTERVAL, RECOVERY_SECONDS, Dispatcher
from bot.core.domain import (
    MAX_IMAGES,
    MAX_SEED,
    DiscordTarget,
    GenerationRequest,
    Job,
    JobState,
    Member,
    Option,
    SafetyLevel,
    SharedOrigin,
)
from bot.core.errors import CallbackRejected, InvalidRequest, PromptBlocked, ProviderError
from bot.core.images import ImageStore
from bot.core.job_trip import ACTIVE_STATES, JobTrip
from bot.core.modlog import ModLog
from bot.core.preferences import apply_safety_floor
from bot.core.providers.base import ImageProvider
from bot.core.quotas import QuotaService, check_channel_allowed
from bot.core.routing import Router
from bot.core.storage.protocols import JobStore
from bot.core.text import is_blank

log = logging.getLogger(__name__)


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


# /jobs lists this many; Discord allows 25 buttons a message, 5 rows of 5.
RECENT_JOBS = 10


@dataclass(frozen=True, slots=True)
class Submission:
    """The jobs one /imagine became, and the chosen options its likely provider will not
    apply (the member is told at once; the result says what really happened).

    ``safety_floor`` is the server's floor when it made the request stricter than asked.
    """

    jobs: list[Job]
    not_applied: frozenset[Option]
    safety_floor: SafetyLevel | None = None


# Shows the member their queued jobs and the first one's place in the queue.
Reply = Callable[[Submission, int | None], Awaitable[None]]


class JobService:
    def __init__(
        self,
        *,
        repository: JobStore,
        quotas: QuotaService,
        blocklist: BlocklistService,
        providers: Mapping[str, ImageProvider],
        router: Router,
        trip: JobTrip,
        dispatcher: Dispatcher,
        delivery: DeliveryService,
        max_prompt_length: int,
        clock: Clock,
        mod_log: ModLog | None = None,
    ) -> None:
        self._jobs = repository
        self._mod_log = mod_log
        self._delivery = delivery
        self._quotas = quotas
        self._blocklist = blocklist
        self._providers = providers
        self._router = router
        self._trip = trip
        self._dispatcher = dispatcher
        self._max_prompt_length = max_prompt_length
        self._clock = clock

    # ----------------------------------------------------------------- requests from members

    async def submit(
        self,
        request: GenerationRequest,
        target: DiscordTarget,
        member: Member,
        *,
        reply: Reply | None = None,
        remix_of: int | None = None,
        shared_from: SharedOrigin | None = None,
    ) -> Submission:
        """Store a validated request as queued jobs holding their credits, and queue them.
        ``remix_of``: the job whose result the member started this request from (a button);
        ``shared_from``: the prompt-library entry (its Use button).
        The server's allowed channels are checked first (``target``'s channel, or a thread's
        parent), then its safety floor applied: a more lenient request runs at the floor.

        Raises InvalidRequest (or a subclass naming the limit) and stores nothing when the
        channel, the prompt, the server's blocklist, a provider's limits, a queue limit or the
        member's credits say no. ``reply`` shows the member the queued jobs and their place;
        until it has, the jobs send nothing of their own (their progress or result would
        otherwise race ahead of it).
        """
        request = validate_request(request, max_prompt_length=self._max_prompt_length)
        # Here, the one path of /imagine and the result buttons alike, so none bypasses it.
        policy = await self._quotas.policy(member.guild_id)
        check_channel_allowed(policy, target)
        request, floored = apply_safety_floor(request, policy.safety_floor)
        try:
            await self._blocklist.check(member, request.prompt, request.negative_prompt)
        except PromptBlocked as refusal:
            # The member's refusal names nothing; the mod log gets the full story, posted on
            # the side so the refusal does not wait for it.
            if self._mod_log is not None:
                prompt = request.prompt
                if request.negative_prompt:
                    prompt += f"\nNegative: {request.negative_prompt}"
                self._mod_log.prompt_blocked(member, refusal, prompt)
            raise
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
            now=self._clock.now(),
            reservation=reservation,
            remix_of=remix_of,
            shared_from=shared_from,
        )
        if not jobs:
            raise await self._quotas.refusal(member, reservation)
        log.info(
            "jobs %s queued (tier %s, %d credits each)",
            ",".join(str(job.id) for job in jobs),
            request.tier.value,
            reservation.credits,
        )
        routes = self._router.routes(request)
        submission = Submission(
            jobs, routes[0].not_applied if routes else frozenset(), safety_floor=floored
        )
        if reply is None:
            self._dispatcher.enqueue(jobs)
            return submission
        self._trip.expect_reply(target.interaction_token)
        self._dispatcher.enqueue(jobs, shown=True)
        try:
            await reply(submission, self.queue_position(jobs[0].id))
        except Exception:
            # The jobs are stored and on their way: an error now would tell the member their
            # command failed while it runs and is charged. Their next edit reaches them.
            log.warning("jobs %s: the reply could not be shown", jobs[0].id, exc_info=True)
        finally:
            self._trip.reply_shown(target.interaction_token)
        return submission

    async def job(self, job_id: int) -> Job:
        """A job by id, for a button on its result; InvalidRequest when there is none (a
        ``custom_id`` is member-visible text, so any id may come back)."""
        job = await self._jobs.get(job_id)
        if job is None:
            raise InvalidRequest("I no longer know that image; try /imagine instead.")
        return job

    async def recent(self, member: Member) -> list[Job]:
        """The member's latest jobs here, those that never reached them first (/jobs)."""
        return await self._jobs.recent_jobs(
            guild_id=member.guild_id, user_id=member.user_id, limit=RECENT_JOBS
        )

    async def undelivered_news(self, member: Member) -> list[Job]:
        """The member's jobs that found no route to them and that they have not been told
        of; from now on they count as told."""
        return await self._jobs.take_undelivered(
            guild_id=member.guild_id, user_id=member.user_id, now=self._clock.now()
        )

    async def kept_result(self, job_id: int, member: Member) -> Job:
        """One of the member's own finished jobs whose images are on disk, to show again."""
        job = await self.job(job_id)
        if (job.target.guild_id, job.target.user_id) != (member.guild_id, member.user_id):
            raise InvalidRequest("That image is not one of yours.")
        if not job.image_paths or job.state not in (JobState.DELIVERED, JobState.UNDELIVERABLE):
            raise InvalidRequest("That job has no image to show.")
        return job

    def queue_position(self, job_id: int) -> int | None:
        """1 for the next job to start; None once it has started."""
        return self._dispatcher.position(job_id)

    async def member_jobs(self, member: Member) -> list[tuple[Job, int | None]]:
        """A member's unfinished jobs with their queue positions (None: running)."""
        jobs = await self._jobs.member_jobs(guild_id=member.guild_id, user_id=member.user_id)
        return [(job, self.queue_position(job.id)) for job in jobs]

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
        canceled = await self._jobs.mark_canceled(job.id, now=self._clock.now())
        if canceled is None:
            raise InvalidRequest("That job has just moved on and can no longer be canceled.")
        self._dispatcher.withdraw(job.id)
        if job.provider is not None and job.provider_job_id is not None:
            with contextlib.suppress(ProviderError):
                await self._providers[job.provider].cancel(job.provider_job_id)
        log.info("job %s canceled by its member", job.id)
        if canceled.batch_size > 1:
            # Its siblings may all have ended, waiting for this one: the request concludes now.
            await self._delivery.deliver(canceled)
        return canceled

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Resume every unfinished job, then start taking queued ones in order."""
        self._dispatcher.start(await self._jobs.unfinished())

    async def stop(self) -> None:
        """Cancel in-memory work; every job's state is in the database for the next start."""
        await self._dispatcher.stop()
        await self._trip.settle()
        if self._mod_log is not None:
            await self._mod_log.settle()

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
        heard = self._trip.hear(job_id, provider_name, token, proof)
        if heard is not None:
            return heard
        # Not awaiting a result here: ended, not sent yet, or no job at all.
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
        # Recorded, as another process may hold the job; a job still being sent here polls as
        # soon as its create is answered, so there is nothing to wake.
        if proof.delivery_id is not None and not await self._jobs.remember_delivery(
            provider=provider_name,
            delivery_id=proof.delivery_id,
            job_id=job.id,
            now=self._clock.now(),
        ):
            return "duplicate"
        return "accepted"


def job_service_for(
    settings: Settings,
    *,
    repository: JobStore,
    quotas: QuotaService,
    blocklist: BlocklistService,
    providers: Mapping[str, ImageProvider],
    router: Router,
    images: ImageStore,
    delivery: DeliveryService,
    public_url: str | None,
    clock: Clock,
    recovery_seconds: float = RECOVERY_SECONDS,
    progress_interval: float = PROGRESS_INTERVAL,
    mod_log: ModLog | None = None,
) -> JobService:
    """The job service with its trip and dispatcher, wired from the settings; a change of the
    guilds' settings wakes the dispatcher."""
    trip = JobTrip(
        repository=repository,
        providers=providers,
        router=router,
        tiers=settings.tiers,
        images=images,
        delivery=delivery,
        settings=settings.jobs,
        public_url=public_url,
        clock=clock,
        mod_log=mod_log,
    )
    dispatcher = Dispatcher(
        trip=trip,
        jobs=repository,
        router=router,
        delivery=delivery,
        max_running=quotas.max_running,
        providers=list(providers),
        queue=settings.queue,
        clock=clock,
        recovery_seconds=recovery_seconds,
        progress_interval=progress_interval,
    )
    quotas.on_policy_change(dispatcher.wake)
    return JobService(
        repository=repository,
        quotas=quotas,
        blocklist=blocklist,
        providers=providers,
        router=router,
        trip=trip,
        dispatcher=dispatcher,
        delivery=delivery,
        max_prompt_length=settings.discord.max_prompt_length,
        clock=clock,
        mod_log=mod_log,
    )
