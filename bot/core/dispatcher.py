"""The dispatcher: starts waiting jobs in fair order within the running limits.

It works from the in-memory QueueIndex, never from a scan of the jobs table: each pass reads
only as much of the fair order as it can start, and expiry comes from a heap of deadlines.
The table stays the truth; the index is rebuilt from it at start.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterator

from bot.core.clock import Clock
from bot.core.config import QueueSettings
from bot.core.delivery import DeliveryService
from bot.core.domain import Job, JobState
from bot.core.errors import DeadlineExceeded
from bot.core.job_trip import JobTrip
from bot.core.queue_index import QueueIndex
from bot.core.routing import Router
from bot.core.scheduling import Slot, startable
from bot.core.storage.protocols import JobStore

log = logging.getLogger(__name__)

# Discord allows about 5 edits per 5 s per message; one position edit per 5 s per job is calm.
PROGRESS_INTERVAL = 5.0
# Position edits go to the jobs nearest the front, where a member watches it move; the others
# showed their place when queued and see it again with /queue.
PROGRESS_DEPTH = 25
# A pass reads at most this much of the fair order: when the first ones all wait for a full
# provider, a pass still costs the same whatever the queue's length.
SCAN_LIMIT = 256
# A job whose task died of an unexpected error (the database locked past busy_timeout, say) is
# carried on from its recorded state after this pause, as a restart would.
RECOVERY_SECONDS = 5.0


class Dispatcher:
    def __init__(
        self,
        *,
        trip: JobTrip,
        jobs: JobStore,
        router: Router,
        delivery: DeliveryService,
        max_running: Callable[[int], Awaitable[int]],
        providers: Collection[str],
        queue: QueueSettings,
        clock: Clock,
        recovery_seconds: float = RECOVERY_SECONDS,
        progress_interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._trip = trip
        self._jobs = jobs
        self._router = router
        self._delivery = delivery
        self._max_running = max_running
        self._providers = providers
        self._queue = queue
        self._clock = clock
        self._recovery_seconds = recovery_seconds
        self._progress_interval = progress_interval
        self._index = QueueIndex()
        self._waiting: dict[int, Job] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._slots: dict[int, Slot] = {}
        self._progress_sent: dict[int, tuple[int, float]] = {}
        self._edits: set[asyncio.Task[None]] = set()
        self._recoveries: set[asyncio.Task[None]] = set()
        # Positions changed since the last report, which is due at _report_at.
        self._moved = False
        self._report_at = 0.0
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- changes

    def enqueue(self, jobs: Collection[Job], *, shown: bool = False) -> None:
        """Queued jobs wait for their turn; the loop looks at them at once. ``shown``: the
        member is being shown these jobs' places now, so an edit follows only a change."""
        now = self._clock.now()
        for job in jobs:
            self._index.add(job.id, job.target.guild_id or 0, job.target.user_id)
            self._waiting[job.id] = job
            heapq.heappush(self._deadlines, (self._trip.deadline(job), job.id))
        for job in jobs if shown else ():
            position = self._index.position(job.id)
            if position is not None:
                self._progress_sent[job.id] = (position, now)
        self.wake()

    def wake(self, *_: object) -> None:
        """Look at the queue again (new jobs, ended jobs, a changed running limit)."""
        self._moved = True
        self._wake.set()

    def withdraw(self, job_id: int) -> None:
        """A job left the queue in the table (canceled): stop its task or its wait."""
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
        elif self._index.drop(job_id):
            del self._waiting[job_id]
            self._progress_sent.pop(job_id, None)
        self.wake()

    def position(self, job_id: int) -> int | None:
        """1 for the next job to start; None once it has started (or is not queued)."""
        return self._index.position(job_id)

    # ----------------------------------------------------------------- lifecycle

    def start(self, unfinished: Collection[Job]) -> None:
        """Resume every unfinished job, then start taking queued ones in order."""
        self.enqueue([job for job in unfinished if job.state is JobState.QUEUED])
        for job in unfinished:
            if job.state is not JobState.QUEUED:
                self._spawn(job, self._slot(job))
        self._loop = asyncio.create_task(self._dispatch(), name="job-dispatcher")

    async def stop(self) -> None:
        """Cancel in-memory work; every job's state is in the database for the next start."""
        tasks = [
            task
            for task in (self._loop, *self._tasks.values(), *self._edits, *self._recoveries)
            if task
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None

    # ----------------------------------------------------------------- the loop

    async def _dispatch(self) -> None:
        """Start queued jobs in fair order within the running limits; woken by new jobs, ended
        jobs and, for queued jobs' deadlines, by the clock."""
        while True:
            self._wake.clear()
            try:
                await self._pass()
            except Exception:
                # The loop outlives any one failure (the database locked past busy_timeout):
                # the table still holds every job, and the next pass tries again.
                log.exception("dispatcher pass failed; trying again soon")
                await self._clock.sleep(self._recovery_seconds)
                continue
            await self._clock.wait(self._wake, self._until_next_event())

    async def _pass(self) -> None:
        await self._expire_overdue()
        for slot in await self._choose():
            self._index.start(slot)
            job = self._waiting.pop(slot.job_id)
            self._progress_sent.pop(slot.job_id, None)
            self._spawn(job, slot)
        now = self._clock.now()
        if self._moved and now >= self._report_at:
            # At most one report per PROGRESS_INTERVAL: an edit per job is allowed no more often.
            self._moved = False
            self._report_at = now + self._progress_interval
            self._report_positions()

    async def _choose(self) -> list[Slot]:
        """The waiting jobs that may start now, reading the fair order only as far as the free
        places go; guilds at their running limit are left out of it altogether."""
        limits = {
            guild_id: await self._max_running(guild_id) for guild_id in self._index.waiting_guilds()
        }
        free_in_guilds = {
            guild_id: limit - self._index.running_in(guild_id) for guild_id, limit in limits.items()
        }
        per_provider = Counter(slot.provider for slot in self._slots.values())
        free_at_providers = sum(
            max(0, self._queue.max_running_per_provider - per_provider[name])
            for name in self._providers
        )
        room = min(sum(max(0, free) for free in free_in_guilds.values()), free_at_providers)
        if room <= 0:
            return []
        full = {guild_id for guild_id, free in free_in_guilds.items() if free <= 0}
        return startable(
            self._candidates(full),
            list(self._slots.values()),
            max_running_per_guild=limits.__getitem__,
            max_running_per_provider=self._queue.max_running_per_provider,
            room=room,
        )

    def _candidates(self, full: Collection[int]) -> Iterator[Slot]:
        for entry in itertools.islice(self._index.order(skip=full), SCAN_LIMIT):
            yield self._slot(self._waiting[entry.job_id])

    async def _expire_overdue(self) -> None:
        """Fail (and refund) queued jobs past their tier's deadline."""
        now = self._clock.now()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, job_id = heapq.heappop(self._deadlines)
            if not self._index.drop(job_id):
                continue  # started or withdrawn meanwhile
            job = self._waiting.pop(job_id)
            self._progress_sent.pop(job_id, None)
            failed = await self._trip.fail(job, DeadlineExceeded(detail="deadline in the queue"))
            self._spawn(failed, self._slot(failed))  # delivers the failure

    def _until_next_event(self) -> float | None:
        """Seconds until a queued job's deadline or a position report falls due, if any."""
        while self._deadlines and not self._index.is_waiting(self._deadlines[0][1]):
            heapq.heappop(self._deadlines)
        moments = [self._deadlines[0][0]] if self._deadlines else []
        if self._moved and self._index.waiting_count():
            moments.append(self._report_at)
        return max(0.0, min(moments) - self._clock.now()) if moments else None

    def _report_positions(self) -> None:
        """Edit a waiting member's queued message when their position changes, at most once
        per PROGRESS_INTERVAL per job (Discord rate-limits message edits). Reading the front of
        the order costs a step per waiting member, once per interval at most."""
        now = self._clock.now()
        front = []
        for position, entry in enumerate(self._index.order(), 1):
            if position > PROGRESS_DEPTH:
                break
            front.append((position, self._waiting[entry.job_id]))
        for position, job in front:
            if self._trip.reply_pending(job):
                continue  # the reply itself will show the position
            last = self._progress_sent.get(job.id)
            if last is None:
                # Resumed after a restart: no burst of edits then, only for later changes.
                self._progress_sent[job.id] = (position, now)
                continue
            if last[0] == position or now - last[1] < self._progress_interval:
                continue
            self._progress_sent[job.id] = (position, now)
            # Sent beside the loop: an edit waits on Discord (and its rate limits), and the
            # queue must not wait for it.
            edit = asyncio.create_task(self._delivery.progress(job, position))
            self._edits.add(edit)
            edit.add_done_callback(self._edits.discard)

    def _spawn(self, job: Job, slot: Slot) -> None:
        if slot.job_id in self._tasks:
            return
        self._index.run(slot)
        task = asyncio.create_task(self._trip.run(job), name=f"job-{slot.job_id}")
        self._tasks[slot.job_id] = task
        self._slots[slot.job_id] = slot

        def finished(ended: asyncio.Task[None]) -> None:
            self._tasks.pop(slot.job_id, None)
            self._slots.pop(slot.job_id, None)
            self._index.finish(slot.job_id)
            if not ended.cancelled() and ended.exception() is not None:
                log.error("job %s stopped on an error", slot.job_id, exc_info=ended.exception())
                recovery = asyncio.create_task(self._recover(slot.job_id))
                self._recoveries.add(recovery)
                recovery.add_done_callback(self._recoveries.discard)
            self.wake()

        task.add_done_callback(finished)

    async def _recover(self, job_id: int) -> None:
        """Carry a job whose task died on from what the table says, as a restart would."""
        while True:
            await self._clock.sleep(self._recovery_seconds)
            try:
                job = await self._jobs.get(job_id)
            except Exception:
                log.warning("job %s: still cannot be read; trying again", job_id, exc_info=True)
                continue
            if job is None or job.state.is_final or job.id in self._tasks:
                return
            if job.state is JobState.QUEUED:
                self.enqueue([job])
            else:
                self._spawn(job, self._slot(job))
            return

    def _slot(self, job: Job) -> Slot:
        provider = job.provider or self._router.preferred(job.request, exclude=job.maybe_created_at)
        return Slot(job.id, job.target.guild_id or 0, job.target.user_id, provider)
