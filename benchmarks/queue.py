"""Queue benchmark: credit reservations under a burst, and resuming in-flight jobs after a restart.

Two figures, each beside a baseline measured in the same run, printed one line each (with
``os.cpu_count()`` first); ``python -m benchmarks.hot_path`` puts both in its table:

1. **Reservations per second.** ``--requests`` (default 1000) ``/imagine``-equivalent
   submissions run concurrently on one event loop against one SQLite file, each doing what
   ``JobService.submit`` does for credits: ``QuotaService.reservation`` builds the limits and
   ``JobRepository.create`` takes the credits in one atomic conditional INSERT. The requests come
   from distinct members spread over a few guilds; every member may use exactly ``MEMBER_DAILY``
   credits a day but asks for more, and one guild's monthly budget is below what its members
   could use. The script asserts that exactly the number of jobs the limits allow was accepted
   (per member, per guild and in total: no overspend) and reports the wall time, decisions
   (accepted + refused) per second and the accepted count.

   *Baseline:* the same number of concurrent requests, each one autocommit ``INSERT`` of a
   small row (guild, member, credits, time) into a table without indexes, on a connection
   opened by the bot's own ``open_database`` on a file of its own in the same directory. So it
   has the bot's journal mode, ``synchronous`` level and busy timeout, whatever they are when
   the script runs: the ratio shows what the bot's reservation costs beyond the one durable
   write it cannot avoid, not what a different durability setting would save.

2. **Time to resume in-flight jobs.** ``--jobs`` (default 1000) jobs are stored as ``submitted``
   (``create`` + ``mark_submitting`` + ``mark_submitted``) with real predictions made through the
   bot's ``ReplicateProvider.start`` at the fake Replicate server of ``tests/fakes``. A fresh
   ``JobService`` is then built over a newly opened connection to that database, as after a
   restart, and ``start()`` is timed until (a) every job has been re-attached, i.e. the first poll
   of its prediction has been answered, and (b) every job is delivered (downloaded, saved, posted
   to a recording publisher, marked delivered). The fake's predictions are already finished when
   the bot polls (no start delay, no processing time), so the figure is the bot's resume path plus
   the fake's HTTP answers, not any generation time. By default the fake runs in a child process
   (still on 127.0.0.1) so that its request handling and image encoding do not share the bot's
   event loop; ``--fake-in-process`` runs it on the bot's loop instead, as the tests do. The fake
   still encodes a real 1024x1024 JPEG for every download (a few milliseconds each, one at a
   time), so on few cores part of the figure is the fake's: read it as an upper bound on the
   bot's own resume time.

   *Baseline:* the fake's own answer time for the same work, measured right after the resume
   against the same fake: one plain aiohttp session (the same default connection limit as the
   bot's session) makes, for each of the jobs at once, the poll of its prediction and the
   download of its image (which the fake encodes afresh, as it did for the bot), and the wall
   time until all have been answered is reported. That is
   what the resume costs when the client does nothing but ask; the bot adds its database
   reads and writes, the image check, the saved file and the post.

Everything runs on 127.0.0.1 and in a temporary directory that is removed at the end. Run from
the repository root:

    .venv/bin/python -m benchmarks.queue [--requests 1000] [--jobs 1000] [--fake-in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
import aiosqlite
from pydantic import SecretStr

from bot.core.config import ReplicateProviderSettings, Settings
from bot.core.delivery import Posted, Result
from bot.core.domain import (
    DiscordTarget,
    GenerationRequest,
    JobState,
    Member,
    Reservation,
    Tier,
)
from bot.core.images import ImageStore
from bot.core.providers.base import ProviderJob
from bot.core.providers.http import HttpClient
from bot.core.providers.replicate import ReplicateProvider
from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from tests.fakes.fake_replicate import FakeReplicate
from tests.fakes.recording_publisher import RecordingPublisher
from tests.services import job_service, quota_service

GUILDS = 5
REQUESTS_PER_MEMBER = 5
MEMBER_DAILY = 3  # credits, and a fast image costs 1: three of each member's five requests fit
GUILD_ID_BASE = 1_100_000_000_000_000
USER_ID_BASE = 1_200_000_000_000_000
CHANNEL_ID = 1_300_000_000_000_001
APPLICATION_ID = 1_300_000_000_000_002
ADMIN_ID = 1_300_000_000_000_003
PROVIDER = "replicate"
# The fake's predictions are finished the moment they are created.
FAKE_START_DELAY = 0.0
FAKE_PROCESSING_SECONDS = 0.0
# Bounds the setup's creates at the fake; the resume itself is not throttled by the script.
SETUP_CONCURRENCY = 50
RESUME_TIMEOUT_SECONDS = 90.0
UNLIMITED = Reservation(
    credits=1,
    member_daily=None,
    member_monthly=None,
    guild_monthly=None,
    max_queued_per_member=None,
    max_queued_per_guild=None,
    day_start=0.0,
    month_start=0.0,
    member_counted_since_day=0.0,
    member_counted_since_month=0.0,
)


def a_target(guild_id: int, user_id: int, n: int) -> DiscordTarget:
    return DiscordTarget(
        guild_id=guild_id,
        channel_id=CHANNEL_ID,
        user_id=user_id,
        application_id=APPLICATION_ID,
        interaction_token=f"interaction-{n}",
        interaction_expires_at=datetime.now(UTC) + timedelta(minutes=15),
        attachment_size_limit=10 * 1024 * 1024,
    )


# ---------------------------------------------------------------------- 1. reservations


@dataclass(frozen=True)
class ReservationPlan:
    """Who asks, in which order, and how many jobs the limits let in."""

    requests: list[Member]  # one entry per request, shuffled
    asked: Mapping[Member, int]
    budgets: Mapping[int, int]  # guild id -> monthly credit budget
    expected_per_guild: Mapping[int, int]

    @property
    def expected(self) -> int:
        return sum(self.expected_per_guild.values())


def plan_reservations(count: int, *, seed: int = 0) -> ReservationPlan:
    """``count`` requests, REQUESTS_PER_MEMBER per member, members dealt round the guilds; the
    first guild's budget is three quarters of what its members may use, so it binds too."""
    asked: Counter[Member] = Counter()
    for n in range(count):
        index = n // REQUESTS_PER_MEMBER
        asked[Member(guild_id=GUILD_ID_BASE + index % GUILDS, user_id=USER_ID_BASE + index)] += 1
    member_may_use: Counter[int] = Counter()
    for member, times in asked.items():
        member_may_use[member.guild_id] += min(times, MEMBER_DAILY)
    budget_guild = GUILD_ID_BASE
    budgets = {budget_guild: max(1, member_may_use[budget_guild] * 3 // 4)}
    expected = {
        guild: min(usable, budgets.get(guild, usable)) for guild, usable in member_may_use.items()
    }
    requests = list(asked.elements())
    random.Random(seed).shuffle(requests)
    return ReservationPlan(requests, asked, budgets, expected)


@dataclass(frozen=True)
class ReservationResult:
    requests: int
    accepted: int
    allowed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class InsertResult:
    requests: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def bench_insert_baseline(count: int, workdir: Path) -> InsertResult:
    """``count`` concurrent requests, each one autocommit INSERT on a file opened the bot's way."""
    connection = await open_database(workdir / "inserts.sqlite3")
    try:
        await connection.execute(
            "CREATE TABLE baseline_inserts (id INTEGER PRIMARY KEY, guild_id INTEGER NOT NULL, "
            "user_id INTEGER NOT NULL, credits INTEGER NOT NULL, created_at REAL NOT NULL)"
        )
        plan = plan_reservations(count)
        now = time.time()

        async def insert(member: Member) -> None:
            cursor = await connection.execute(
                "INSERT INTO baseline_inserts (guild_id, user_id, credits, created_at) "
                "VALUES (?, ?, 1, ?)",
                (member.guild_id, member.user_id, now),
            )
            await cursor.close()

        started = time.perf_counter()
        await asyncio.gather(*(insert(member) for member in plan.requests))
        seconds = time.perf_counter() - started
        async with connection.execute("SELECT count(*) FROM baseline_inserts") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        assert row[0] == len(plan.requests), f"{row[0]} rows for {len(plan.requests)} inserts"
    finally:
        await connection.close()
    return InsertResult(len(plan.requests), seconds)


async def bench_reservations(count: int, workdir: Path) -> ReservationResult:
    settings = Settings.model_validate(
        {
            "tiers": {"fast": {"credits": 1}},
            "quotas": {
                "member_daily_credits": MEMBER_DAILY,
                "member_monthly_credits": 0,  # unlimited: the daily limit is the one that binds
                "guild_monthly_credits": 0,
            },
            # Queue limits out of the way: this measures the credit check.
            "queue": {"max_queued_per_member": 1000, "max_queued_per_guild": 100_000},
        }
    )
    now = time.time()
    plan = plan_reservations(count)
    connection = await open_database(workdir / "reservations.sqlite3")
    try:
        quotas = quota_service(connection, settings, clock=lambda: now)
        repository = JobRepository(connection)
        for guild_id, budget in plan.budgets.items():
            await quotas.set_budget(guild_id, ADMIN_ID, monthly=budget)

        async def reserve(n: int, member: Member) -> bool:
            """What /imagine does for credits: build the limits, then one conditional INSERT."""
            reservation = await quotas.reservation(member, Tier.FAST)
            jobs = await repository.create(
                GenerationRequest(prompt=f"benchmark request {n}"),
                a_target(member.guild_id, member.user_id, n),
                callback_token=secrets.token_urlsafe(32),
                now=now,
                reservation=reservation,
            )
            return bool(jobs)

        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(reserve(n, member) for n, member in enumerate(plan.requests))
        )
        seconds = time.perf_counter() - started

        accepted = sum(outcomes)
        assert accepted == plan.expected, f"accepted {accepted}, limits allow {plan.expected}"
        for guild_id, expected in plan.expected_per_guild.items():
            used = await repository.usage(guild_id=guild_id, user_id=None, since=0.0)
            assert used == expected, f"guild {guild_id} used {used} credits, allowed {expected}"
        for member, times in plan.asked.items():
            used = await repository.usage(
                guild_id=member.guild_id, user_id=member.user_id, since=0.0
            )
            allowed = min(times, MEMBER_DAILY)
            if member.guild_id in plan.budgets:
                assert used <= allowed, f"member {member.user_id} used {used} of {allowed}"
            else:
                assert used == allowed, f"member {member.user_id} used {used}, allowed {allowed}"
    finally:
        await connection.close()
    return ReservationResult(len(plan.requests), accepted, plan.expected, seconds)


# ---------------------------------------------------------------------- 2. resume


@dataclass(frozen=True)
class FakeStats:
    creates: int
    polls: int
    downloads: int


def fake_stats(fake: FakeReplicate) -> tuple[int, int, int]:
    """Plain ints, so they cross the process boundary without pickling our classes."""
    return (
        fake.create_count,
        len(fake.requests_to("GET", "/predictions/")),
        len(fake.requests_to("GET", "/delivery/")),
    )


@dataclass(frozen=True)
class FakeHandle:
    base_url: str
    token: str
    stats: Callable[[], Awaitable[FakeStats]]


def new_fake() -> FakeReplicate:
    # Official mode: outputs are served by the fake itself; no public_url, so no webhooks.
    return FakeReplicate(
        mode="official", start_delay=FAKE_START_DELAY, processing_seconds=FAKE_PROCESSING_SECONDS
    )


@contextlib.asynccontextmanager
async def fake_in_process() -> AsyncIterator[FakeHandle]:
    async with new_fake() as fake:

        async def stats() -> FakeStats:
            return FakeStats(*fake_stats(fake))

        yield FakeHandle(fake.base_url, fake.token, stats)


def serve_fake(connection: Connection) -> None:
    """The child process: a fake Replicate that answers ``stats`` until told anything else."""
    asyncio.run(_serve_fake(connection))


async def _serve_fake(connection: Connection) -> None:
    async with new_fake() as fake:
        connection.send((fake.base_url, fake.token))
        while True:
            try:
                message = await asyncio.to_thread(connection.recv)
            except EOFError:
                return
            if message != "stats":
                return
            connection.send(fake_stats(fake))


@contextlib.asynccontextmanager
async def fake_in_child_process() -> AsyncIterator[FakeHandle]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=serve_fake, args=(theirs,), name="fake-replicate", daemon=True)
    process.start()
    try:
        base_url, token = await asyncio.to_thread(ours.recv)

        def ask() -> FakeStats:
            ours.send("stats")
            return FakeStats(*ours.recv())

        async def stats() -> FakeStats:
            return await asyncio.to_thread(ask)

        yield FakeHandle(base_url, token, stats)
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        await asyncio.to_thread(process.join, 10.0)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 5.0)
        ours.close()


class TimedProvider(ReplicateProvider):
    """The bot's Replicate provider, noting when each prediction's first poll was answered."""

    def __init__(
        self,
        name: str,
        settings: ReplicateProviderSettings,
        *,
        api_key: SecretStr,
        http: HttpClient,
    ) -> None:
        super().__init__(name, settings, api_key=api_key, webhook_secret=None, http=http)
        self.first_answers: dict[str, float] = {}

    async def fetch(self, provider_job_id: str) -> ProviderJob:
        snapshot = await super().fetch(provider_job_id)
        self.first_answers.setdefault(provider_job_id, time.perf_counter())
        return snapshot


class CountingPublisher(RecordingPublisher):
    """A recording publisher that says when ``expected`` jobs have been posted."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self._expected = expected
        self.all_posted = asyncio.Event()

    async def post_in_channel(self, results: Sequence[Result]) -> Posted:
        posted = await super().post_in_channel(results)
        self._count()
        return posted

    def _count(self) -> None:
        if len(self.images) + len(self.failed_jobs) >= self._expected:
            self.all_posted.set()


@dataclass(frozen=True)
class ResumeResult:
    jobs: int
    start_seconds: float  # until start() returned
    reattached_seconds: float  # until every job's first poll was answered
    delivered_seconds: float  # until no job was left unfinished
    states: Mapping[JobState, int]
    creates_during_resume: int
    polls: int
    downloads: int
    # Baseline: the same fake answering one poll and one download per job, asked all at once.
    fake_answer_seconds: float


async def store_submitted_jobs(
    connection: aiosqlite.Connection, provider: ReplicateProvider, count: int
) -> list[int]:
    """``count`` jobs in ``submitted``, each with its prediction made at the fake."""
    repository = JobRepository(connection)
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)
    now = time.time()

    async def submitted(n: int) -> int:
        guild_id = GUILD_ID_BASE + n % GUILDS
        request = GenerationRequest(prompt=f"benchmark resume {n}")
        [job] = await repository.create(
            request,
            a_target(guild_id, USER_ID_BASE + n, n),
            callback_token=secrets.token_urlsafe(32),
            now=now,
            reservation=UNLIMITED,
        )
        assert await repository.mark_submitting(job.id, provider=PROVIDER, now=now)
        async with limit:
            created = await provider.start(request, callback_url=None)
        assert await repository.mark_submitted(
            job.id, provider=PROVIDER, provider_job_id=created.id, now=now
        )
        return job.id

    return list(await asyncio.gather(*(submitted(n) for n in range(count))))


async def fake_answer_time(base_url: str, token: str, prediction_ids: Sequence[str]) -> float:
    """Wall time for a plain client to poll every prediction and download its image."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:

        async def poll_and_download(prediction_id: str) -> None:
            async with session.get(f"{base_url}/predictions/{prediction_id}", headers=headers) as r:
                r.raise_for_status()
                prediction = await r.json()
            assert prediction["status"] == "succeeded", prediction["status"]
            output = prediction["output"]
            url = output[0] if isinstance(output, list) else output
            async with session.get(url) as r:
                r.raise_for_status()
                await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(poll_and_download(pid) for pid in prediction_ids))
        return time.perf_counter() - started


async def none_unfinished(repository: JobRepository) -> None:
    """Return once every job is delivered, undeliverable or canceled."""
    while True:
        if not await repository.unfinished():
            return
        await asyncio.sleep(0.01)


async def bench_resume(count: int, workdir: Path, *, in_process: bool) -> ResumeResult:
    database = workdir / "resume.sqlite3"
    fake_context = fake_in_process() if in_process else fake_in_child_process()
    async with fake_context as fake, aiohttp.ClientSession() as session:
        http = HttpClient(session)
        provider_settings = ReplicateProviderSettings.model_validate(
            {"base_url": fake.base_url, "webhook_mode": "signed", "request_timeout_seconds": 30.0}
        )

        def replicate() -> TimedProvider:
            return TimedProvider(
                PROVIDER, provider_settings, api_key=SecretStr(fake.token), http=http
            )

        # Before the restart: the jobs are at the provider.
        connection = await open_database(database)
        try:
            job_ids = await store_submitted_jobs(connection, replicate(), count)
        finally:
            await connection.close()
        before = await fake.stats()

        # After the restart: a new connection, a new service.
        connection = await open_database(database)
        try:
            provider = replicate()
            publisher = CountingPublisher(count)
            settings = Settings.model_validate(
                {
                    "jobs": {"poll_initial_seconds": 0.05, "poll_max_seconds": 0.2},
                    # The configured maximums; start() re-attaches every submitted job anyway.
                    "queue": {"max_running_per_provider": 100, "max_running_per_guild": 100},
                }
            )
            service = job_service(
                connection,
                providers={PROVIDER: provider},
                publisher=publisher,
                images=ImageStore(workdir / "images"),
                settings=settings,
                public_url=None,
            )
            repository = JobRepository(connection)
            began = time.perf_counter()
            try:
                await service.start()
                start_seconds = time.perf_counter() - began
                async with asyncio.timeout(RESUME_TIMEOUT_SECONDS):
                    await publisher.all_posted.wait()
                    await none_unfinished(repository)
                delivered_seconds = time.perf_counter() - began
            finally:
                await service.stop()
            states: Counter[JobState] = Counter()
            prediction_ids: list[str] = []
            for job_id in job_ids:
                job = await repository.get(job_id)
                assert job is not None
                states[job.state] += 1
                if job.provider_job_id is not None:
                    prediction_ids.append(job.provider_job_id)
        finally:
            await connection.close()
        after = await fake.stats()
        fake_answer_seconds = await fake_answer_time(fake.base_url, fake.token, prediction_ids)

    assert len(provider.first_answers) == count, "some predictions were never polled"
    return ResumeResult(
        jobs=count,
        start_seconds=start_seconds,
        reattached_seconds=max(provider.first_answers.values()) - began,
        delivered_seconds=delivered_seconds,
        states=dict(states),
        creates_during_resume=after.creates - before.creates,
        polls=after.polls - before.polls,
        downloads=after.downloads - before.downloads,
        fake_answer_seconds=fake_answer_seconds,
    )


# ---------------------------------------------------------------------- report


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.queue",
        description="Credit reservations per second, and time to resume in-flight jobs.",
    )
    parser.add_argument("--requests", type=positive, default=1000, help="concurrent requests")
    parser.add_argument("--jobs", type=positive, default=1000, help="submitted jobs to resume")
    parser.add_argument(
        "--fake-in-process",
        action="store_true",
        help="run the fake Replicate on the bot's event loop instead of in a child process",
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    print(f"cpu_count: {os.cpu_count()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as directory:
        workdir = Path(directory)

        reserved = await bench_reservations(args.requests, workdir)
        inserted = await bench_insert_baseline(args.requests, workdir)
        print(
            f"reservations: {reserved.requests} concurrent requests decided in "
            f"{reserved.seconds:.3f} s = {reserved.per_second:,.0f} "
            f"reservations/s; accepted {reserved.accepted}, refused "
            f"{reserved.requests - reserved.accepted} (limits allow exactly {reserved.allowed}: "
            f"no overspend; {GUILDS} guilds, {MEMBER_DAILY} daily credits per member, "
            f"{REQUESTS_PER_MEMBER} requests each, one guild budget-capped; one SQLite file)",
            flush=True,
        )
        print(
            f"reservations baseline: {inserted.requests} concurrent autocommit INSERTs in "
            f"{inserted.seconds:.3f} s = {inserted.per_second:,.0f}/s (ratio "
            f"{reserved.per_second / inserted.per_second:.2f}x)",
            flush=True,
        )

        resumed = await bench_resume(args.jobs, workdir, in_process=args.fake_in_process)
        states = ", ".join(f"{state.value} {n}" for state, n in sorted(resumed.states.items()))
        where = "on the bot's event loop" if args.fake_in_process else "in a child process"
        print(
            f"resume: {resumed.jobs} submitted jobs re-attached (first poll answered) in "
            f"{resumed.reattached_seconds:.3f} s, all past submitted and delivered in "
            f"{resumed.delivered_seconds:.3f} s (start() returned after "
            f"{resumed.start_seconds:.3f} s; final states: {states}; "
            f"{resumed.creates_during_resume} new creates, {resumed.polls} polls, "
            f"{resumed.downloads} downloads; fake predictions already finished: "
            f"start_delay={FAKE_START_DELAY:g} s, "
            f"processing_seconds={FAKE_PROCESSING_SECONDS:g} s; fake {where})",
            flush=True,
        )
        print(
            f"resume baseline: the fake answered {resumed.jobs} polls + downloads, all at once, "
            f"in {resumed.fake_answer_seconds:.3f} s (ratio "
            f"{resumed.delivered_seconds / resumed.fake_answer_seconds:.2f}x)",
            flush=True,
        )


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
