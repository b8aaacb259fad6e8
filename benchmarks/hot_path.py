"""Hot-path benchmark (issue 9): the bot driven as members and Replicate drive it, each figure
beside a baseline measured in the same run, printed as one table.

Machines are small and shared, so only ratios to a baseline taken in the same run mean much.
The bot is the project's own: ``bot.runner.assemble`` builds it and ``bot.runner.serve`` runs
it, and the unmodified discord.py client inside talks HTTP and gateway to the project's fake
Discord (``tests/fakes/fake_discord.py``, many guilds); its provider client talks to the fake
Replicate, and webhooks reach its callback listener over real HTTP on 127.0.0.1. The fakes and
the load generators run in a child process (``benchmarks/fake_world.py``) and take every time
on their own clock, where Discord would: when INTERACTION_CREATE leaves the gateway, when a
callback or a message arrives. Nothing reaches into the bot beyond the composition root, the
configuration format and ``Application.bot`` (whose discord.py ``guild_ready_timeout`` is
shortened, as the e2e tests do), so the script keeps measuring across refactors of the services
and the storage. One exception: the 10,000-job queue is seeded by copying, in SQL, a queued
row the bot wrote (``seed_queue``). The bot logs at ``--log-level`` (default INFO, as deployed)
to a temporary file (``--log-file`` keeps it); its warnings and errors are counted in the notes.

Every row is measured ``--repeat`` times (default 3, each run with a fresh child process and
fresh databases); each run prints its figures with notes as it goes, and the closing Markdown
table gives the range over the runs. ``--only`` picks rows:

``ack``
    First reply to ``/imagine`` under a burst: ``--burst`` (200) commands dealt round
    ``--guilds`` (20) guilds, one member each, sent back to back. Per command: the seconds from
    INTERACTION_CREATE to the first interaction callback request (a deferral or a message,
    whether Discord accepted it or refused it as later than its 3 s); p50 and p99 (nearest
    rank), and how many were not answered inside 3 s (late, or never within 30 s). The bot runs
    with the default ``[queue]`` and ``[quotas]`` settings, as an operator would, against a fake
    Replicate whose images take 30 s, so every create happens but nothing finishes; the notes
    add when the queued message was shown (the reply itself, or the edit that fills a
    deferral), and the bot gets ``--settle`` (2 s) to finish with the commands before it stops.
    *Baseline:* a bare discord.py bot (``commands.Bot``, guilds intent, one ``/imagine`` whose
    handler only calls ``interaction.response.defer()``) in the same harness, against the same
    fake, with the same burst: what a reply costs when the handler does no work at all, i.e.
    discord.py, the event loop and the fake.

``queued``
    One ``/imagine`` answered with ``--queued`` (10,000) jobs waiting: the median over
    ``--samples`` (10) commands sent one at a time (each once the previous one was shown, after
    a 0.2 s pause), as seconds to the first callback request and to the queued message shown.
    The queue is the bot's own: with one job allowed at the provider
    (``max_running_per_provider = 1``) and images that take an hour, the first sample's job runs
    and the rest wait; then the bot is stopped, its newest queued row is copied ``--queued``
    times (members and guilds spread, everything else as the bot wrote it) and the bot starts
    again on that database, as after a restart. *Baseline:* the same bot with the same
    settings, before the copy, when the queue is empty (but for the earlier samples' jobs: at
    most ``--samples`` - 1).

``e2e``
    End-to-end jobs per second with an instant provider (the fake Replicate answers every create
    with a finished prediction): from the first INTERACTION_CREATE of a ``--burst`` over
    ``--guilds`` until the ``--burst``-th result is posted in the guilds' channels. The running
    limits are at their maximum (100 per guild and per provider), so the configuration is not
    what bounds the rate, and webhooks are on (``public_url``), as deployed with Replicate. The
    fake serves one pre-encoded JPEG for every download, so its own encoding stays out of it.
    *Baseline:* the bare bot completing each interaction the cheapest complete way: an
    ephemeral reply, then a channel message with an embed and the same JPEG attached. That is
    what the bot must send Discord for a job, without the provider and the database.

``webhooks``
    Signed Replicate webhooks per second into the bot's listener. ``--webhook-jobs`` (100) jobs
    are submitted through ``/imagine`` (images that take an hour; polls every 30 s, so
    background polling stays out); then the child process posts ``--webhooks`` (3,000) webhooks
    over ``--webhook-concurrency`` (32) connections to the callback URLs the bot itself gave
    Replicate, cycling over the jobs and alternating bodies that say "processing" and
    "succeeded" (the prediction object as Replicate posts it), each with a fresh webhook-id and
    a valid Standard Webhooks signature made with the fake's secret. The rate counts every
    answer after a warm-up of one round per connection (which also covers the bot's one fetch
    of the signing secret); the notes give the statuses. *Baseline:* a bare aiohttp handler
    (reads the body, answers JSON) on the same event loop as the running bot, hit by the same
    generator with the same bodies, paths and concurrency: HTTP and the loop, no bot.

``reservations`` and ``resume``
    From ``benchmarks.queue`` (its docstring has the details): credit reservations per second
    with ``--reservations`` (1,000) concurrent requests, asserted to overspend nothing, beside
    one autocommit INSERT per request on a file opened by the bot's own ``open_database``; and
    the time to resume ``--resume-jobs`` (1,000) in-flight jobs until all are delivered, beside
    the fake's own answer time for the same polls and downloads. These two are storage-level
    figures built on the core's services and repository, so they follow those APIs.

A run of the defaults takes about a minute per repetition on 2 cores. From the repository root:

    .venv/bin/python -m benchmarks.hot_path [--repeat 3] [--only ack,e2e] [--burst 200] ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import math
import os
import platform
import socket
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import discord
from aiohttp import web
from discord import app_commands
from discord.ext import commands
from pydantic import SecretStr

from benchmarks import queue as queue_bench
from benchmarks.fake_world import (
    IMAGE_PROMPT,
    Burst,
    BurstResult,
    WebhookLoad,
    World,
    WorldInfo,
    WorldSpec,
    fake_world,
)
from bot.core.config import Secrets, Settings
from bot.runner import assemble, serve
from tests.fakes.fake_discord import point_discord_py_to
from tests.fakes.loopback import render_image

TIMES = "\N{MULTIPLICATION SIGN}"
DASH = "\N{EN DASH}"
ROWS = ("ack", "queued", "e2e", "webhooks", "reservations", "resume")
DISCORD_DEADLINE = 3.0
ACK_TIMEOUT = 30.0
# Member ids, a block per use so no two commands of a run share a member.
USERS_ACK = 1_500_000_000_000_000_000
USERS_E2E = 1_510_000_000_000_000_000
USERS_EMPTY = 1_520_000_000_000_000_000
USERS_SEEDED = 1_530_000_000_000_000_000
USERS_QUEUED = 1_540_000_000_000_000_000
USERS_WEBHOOKS = 1_550_000_000_000_000_000
SLOW_IMAGE_SECONDS = 3600.0  # "images that take an hour": nothing finishes while measured
BURST_IMAGE_SECONDS = 30.0
MAX_RUNNING = {"max_running_per_guild": 100, "max_running_per_provider": 100}
ROOMY_QUEUE = {"max_queued_per_member": 1000, "max_queued_per_guild": 100_000}

log = logging.getLogger("benchmarks.hot_path")


# ---------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    """One row of one run: the bot's value beside its baseline; ``ratio`` = bot / baseline."""

    row: str
    what: str
    bot: float
    baseline: float
    unit: Literal["s", "/s", "count"]
    baseline_what: str
    goal: str
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.unit == "count" or self.baseline == 0 or math.isinf(self.bot):
            return None
        return self.bot / self.baseline


def percentile(values: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile; ``inf`` stands for a command never answered."""
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def acks_of(result: BurstResult) -> list[float]:
    return [math.inf if ack is None else ack for ack in result.acks]


def missed(result: BurstResult) -> int:
    return sum(ack > DISCORD_DEADLINE for ack in acks_of(result))


# ---------------------------------------------------------------------- harness


class LogCounter(logging.Handler):
    """Counts the bot's warnings and errors per scenario (the records go to the log file)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "discord.client" and "voice will NOT be supported" in str(record.msg):
            return  # discord.py says so for every client; the bot has no voice
        self.counts[record.levelname.lower()] += 1

    def take(self) -> str:
        counts, self.counts = self.counts, Counter()
        if not counts:
            return "bot log: no warnings"
        return "bot log: " + ", ".join(f"{n} {level}" for level, n in sorted(counts.items()))


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        return int(listening.getsockname()[1])


async def until(condition: Callable[[], bool], what: str, task: asyncio.Task[Any]) -> None:
    """Wait for ``condition``; fail at once if ``task`` (the bot) ended instead."""
    async with asyncio.timeout(60):
        while not condition():
            if task.done():
                task.result()
                raise RuntimeError(f"the bot stopped before {what}")
            await asyncio.sleep(0.02)


def bot_settings(
    workdir: Path,
    name: str,
    port: int,
    world: WorldInfo,
    *,
    queue: dict[str, int] | None = None,
    jobs: dict[str, float] | None = None,
) -> Settings:
    """The configuration file's content for one scenario; unnamed sections keep defaults."""
    sections: dict[str, Any] = {
        "database": {"path": str(workdir / f"{name}.sqlite3")},
        "images": {"dir": str(workdir / f"{name}-images")},
        "webhook": {
            "listen_host": "127.0.0.1",
            "listen_port": port,
            "public_url": f"http://127.0.0.1:{port}",
        },
        "providers": {
            "replicate": {"base_url": world.replicate_base_url, "webhook_mode": "signed"}
        },
        "tiers": {tier: {"providers": ["replicate"]} for tier in ("fast", "standard", "ultra")},
    }
    if queue:
        sections["queue"] = queue
    if jobs:
        sections["jobs"] = jobs
    return Settings.model_validate(sections)


@contextlib.asynccontextmanager
async def imagine_bot(settings: Settings, world: WorldInfo) -> AsyncIterator[discord.Client]:
    """The project's bot, built by its composition root, connected and ready."""
    secrets = Secrets(
        discord_token=SecretStr(world.discord_token),
        provider_api_keys={"replicate": SecretStr(world.replicate_token)},
        webhook_secrets={},
    )
    stop = asyncio.Event()
    with point_discord_py_to(world.discord_base_url, world.discord_gateway_url):
        async with assemble(settings, secrets) as application:
            bot = application.bot
            # discord.py waits 2 s after the last GUILD_CREATE before on_ready (as the e2e
            # tests, shortened; it changes nothing after the bot is ready).
            bot._connection.guild_ready_timeout = 0.05
            serving = asyncio.create_task(
                serve(application, token=world.discord_token, stop=stop), name="imagine-bot"
            )
            try:
                await until(bot.is_ready, "it was ready", serving)
                yield bot
            finally:
                stop.set()
                await serving


class BareBot(commands.Bot):
    """The baseline bot: discord.py and one ``/imagine`` that does the least it may."""

    def __init__(self, mode: Literal["defer", "complete"], image: bytes) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=0.05,
        )

        @app_commands.command(name="imagine", description="Generate an image")
        async def imagine(interaction: discord.Interaction[discord.Client], prompt: str) -> None:
            if mode == "defer":
                await interaction.response.defer(ephemeral=True, thinking=True)
                return
            await interaction.response.send_message("Queued.", ephemeral=True)
            assert interaction.channel_id is not None
            channel = self.get_partial_messageable(
                interaction.channel_id, guild_id=interaction.guild_id
            )
            await channel.send(
                content=f"<@{interaction.user.id}>",
                embed=discord.Embed(title="Your image", description=prompt),
                file=discord.File(io.BytesIO(image), "image.jpg"),
                allowed_mentions=discord.AllowedMentions(users=[interaction.user]),
            )

        self.tree.add_command(imagine)

    async def setup_hook(self) -> None:
        await self.tree.sync()


@contextlib.asynccontextmanager
async def bare_bot(
    world: WorldInfo, mode: Literal["defer", "complete"], image: bytes
) -> AsyncIterator[discord.Client]:
    with point_discord_py_to(world.discord_base_url, world.discord_gateway_url):
        bot = BareBot(mode, image)
        try:
            await bot.login(world.discord_token)
            connection = asyncio.create_task(bot.connect(), name="bare-bot")
            try:
                await until(bot.is_ready, "it was ready", connection)
                yield bot
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await connection
        finally:
            await bot.close()


@contextlib.asynccontextmanager
async def bare_handler() -> AsyncIterator[str]:
    """The webhook baseline: an aiohttp handler on this loop that reads and answers."""

    async def callback(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "accepted"})

    app = web.Application()
    app.router.add_post("/callbacks/{provider}", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def seed_queue(database: Path, count: int, world: WorldInfo, user_base: int) -> int:
    """Copy the newest queued job ``count`` times, dealt round the guilds, one member each;
    return how many jobs are queued afterwards.

    Every column is copied as the bot wrote it (whatever columns the schema has by then),
    except the member, the guild and its channel, and the unique callback token. Runs while
    the bot is stopped.
    """
    guilds, channels = world.guild_ids, world.channel_ids
    first_guild, first_channel = guilds[0], channels[0]
    # The fake numbers guilds and channels consecutively, which the SQL below relies on.
    assert guilds == [first_guild + n for n in range(len(guilds))]
    assert channels == [first_channel + n for n in range(len(channels))]
    with contextlib.closing(sqlite3.connect(database)) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(jobs)") if row[1] != "id"]
        template = db.execute(
            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if template is None:
            raise RuntimeError("the bot left no queued job to copy")
        changed = {
            "guild_id": f"{first_guild} + seq.n % {len(guilds)}",
            "channel_id": f"{first_channel} + seq.n % {len(channels)}",
            "user_id": f"{user_base} + seq.n",
            "callback_token": "jobs.callback_token || '-copy-' || seq.n",
        }
        values = ", ".join(changed.get(column, f"jobs.{column}") for column in columns)
        with db:
            db.execute(
                f"INSERT INTO jobs ({', '.join(columns)}) "  # noqa: S608 - our own column names
                "WITH RECURSIVE seq(n) AS "
                "(SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < ?) "
                f"SELECT {values} FROM jobs, seq WHERE jobs.id = ?",
                (count, template[0]),
            )
        return int(db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0])


def queued_jobs(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return int(db.execute("SELECT count(*) FROM jobs WHERE state = 'queued'").fetchone()[0])


# ---------------------------------------------------------------------- scenarios


@dataclass
class Run:
    """What every scenario of one repetition shares."""

    args: argparse.Namespace
    world: World
    workdir: Path
    logs: LogCounter
    image: bytes

    async def reset(self, *, start_delay: float, processing_seconds: float) -> WorldInfo:
        return await self.world.reset(
            WorldSpec(
                guilds=self.args.guilds,
                start_delay=start_delay,
                processing_seconds=processing_seconds,
            )
        )


async def ack_row(run: Run) -> list[Figure]:
    args = run.args
    burst = Burst(count=args.burst, user_base=USERS_ACK, ack_timeout=ACK_TIMEOUT)
    shown_burst = Burst(args.burst, USERS_ACK, ACK_TIMEOUT, wait_for_shown=True)

    world = await run.reset(start_delay=0.05, processing_seconds=BURST_IMAGE_SECONDS)
    async with bare_bot(world, "defer", run.image):
        await run.world.wait_for_command()
        bare = await run.world.burst(burst)
    run.logs.take()

    world = await run.reset(start_delay=0.05, processing_seconds=BURST_IMAGE_SECONDS)
    settings = bot_settings(run.workdir, "ack", free_port(), world)
    async with imagine_bot(settings, world):
        await run.world.wait_for_command()
        ours = await run.world.burst(shown_burst)
        # What the bot does after its first replies (edits, creates) ends before it is
        # stopped, so the shutdown cuts nothing short.
        await asyncio.sleep(args.settle)
        requests = await run.world.fake_requests()
    shown = [math.inf if delay is None else delay for delay in ours.shown]
    notes = [
        f"callbacks accepted {ours.accepted} of {args.burst} (bare {bare.accepted}); the "
        f"queued message shown to the member: p50 {show(percentile(shown, 50), 's')}, "
        f"p99 {show(percentile(shown, 99), 's')}",
        f"burst sent in {ours.sending_seconds * 1000:.0f} ms",
        f"discord edits within {args.settle:g} s: {requests.get('discord edits', 0)}, "
        f"replicate creates {requests.get('replicate creates', 0)}",
        run.logs.take(),
    ]
    what = f"first reply to /imagine, burst of {args.burst} over {args.guilds} guilds"
    bare_what = "bare discord.py bot that only defers"
    return [
        Figure("ack", f"{what}, p50", percentile(acks_of(ours), 50), percentile(acks_of(bare), 50),
               "s", bare_what, "—", notes),
        Figure("ack", f"{what}, p99", percentile(acks_of(ours), 99), percentile(acks_of(bare), 99),
               "s", bare_what, f"≤ 1.5{TIMES}"),
        Figure("ack", f"{what}, not answered inside 3 s", missed(ours), missed(bare), "count",
               bare_what, "0"),
    ]  # fmt: skip


async def queued_row(run: Run) -> list[Figure]:
    args = run.args
    world = await run.reset(start_delay=0.05, processing_seconds=SLOW_IMAGE_SECONDS)
    settings = bot_settings(
        run.workdir,
        "queued",
        free_port(),
        world,
        queue={**ROOMY_QUEUE, "max_running_per_provider": 1},
    )
    async with imagine_bot(settings, world):
        await run.world.wait_for_command()
        empty = await run.world.one_by_one(args.samples, USERS_EMPTY, pause=0.2)
    database = settings.database.path
    seeded_at = time.perf_counter()
    queued = seed_queue(database, args.queued, world, USERS_SEEDED)
    seed_seconds = time.perf_counter() - seeded_at
    started_at = time.perf_counter()
    async with imagine_bot(settings, world):
        restart_seconds = time.perf_counter() - started_at
        await run.world.wait_for_command()
        full = await run.world.one_by_one(args.samples, USERS_QUEUED, pause=0.2)
    still_queued = queued_jobs(database)
    if still_queued < args.queued:
        raise RuntimeError(f"only {still_queued} jobs stayed queued of {args.queued}")

    def seconds(delays: Iterable[float | None]) -> list[float]:
        return [math.inf if delay is None else delay for delay in delays]

    full_acks, empty_acks = seconds(s.ack for s in full), seconds(s.ack for s in empty)
    full_shown, empty_shown = seconds(s.shown for s in full), seconds(s.shown for s in empty)
    notes = [
        f"{queued:,} queued after the copy ({seed_seconds:.1f} s), {still_queued:,} at the end",
        f"restart with them until ready: {restart_seconds:.1f} s",
        f"slowest of {args.samples}: first reply {show(max(full_acks), 's')}, shown "
        f"{show(max(full_shown), 's')} (empty queue: {show(max(empty_acks), 's')}, "
        f"{show(max(empty_shown), 's')})",
        run.logs.take(),
    ]
    what = f"one /imagine with {args.queued:,} jobs queued (median of {args.samples})"
    return [
        Figure("queued", f"{what}: first reply", statistics.median(full_acks),
               statistics.median(empty_acks), "s", "same bot, empty queue", "≤ 50 ms", notes),
        Figure("queued", f"{what}: queued message shown (reply, or what fills a deferral)",
               statistics.median(full_shown), statistics.median(empty_shown), "s",
               "same bot, empty queue", "≤ 50 ms"),
    ]  # fmt: skip


async def e2e_row(run: Run) -> list[Figure]:
    args = run.args
    burst = Burst(count=args.burst, user_base=USERS_E2E, ack_timeout=ACK_TIMEOUT,
                  wait_for_posts=True, post_timeout=args.post_timeout)  # fmt: skip

    world = await run.reset(start_delay=0.0, processing_seconds=0.0)
    async with bare_bot(world, "complete", run.image):
        await run.world.wait_for_command()
        bare = await run.world.burst(burst)
    run.logs.take()

    world = await run.reset(start_delay=0.0, processing_seconds=0.0)
    settings = bot_settings(
        run.workdir, "e2e", free_port(), world, queue={**MAX_RUNNING, **ROOMY_QUEUE}
    )
    async with imagine_bot(settings, world):
        await run.world.wait_for_command()
        ours = await run.world.burst(burst)
        requests = await run.world.fake_requests()

    def rate(result: BurstResult) -> float:
        if result.completion_seconds is None:
            raise RuntimeError(f"only {result.posts} of {args.burst} results were posted")
        return int(args.burst) / result.completion_seconds

    notes = [
        f"{ours.posts_with_files} of {ours.posts} posts carry the image; first replies p99 "
        f"{percentile(acks_of(ours), 99) * 1000:.0f} ms, {missed(ours)} missed 3 s",
        ", ".join(f"{kind} {n}" for kind, n in sorted(requests.items())),
        run.logs.take(),
    ]
    return [
        Figure(
            "e2e",
            f"end-to-end jobs/s, instant provider, burst of {args.burst} over {args.guilds} guilds",
            rate(ours),
            rate(bare),
            "/s",
            "bare bot completing interactions (reply, then post the image)",
            f"≥ 0.7{TIMES}",
            notes,
        )
    ]


async def webhooks_row(run: Run) -> list[Figure]:
    args = run.args
    world = await run.reset(start_delay=0.05, processing_seconds=SLOW_IMAGE_SECONDS)
    settings = bot_settings(
        run.workdir,
        "webhooks",
        free_port(),
        world,
        queue={**MAX_RUNNING, **ROOMY_QUEUE},
        jobs={"poll_initial_seconds": 30.0, "poll_max_seconds": 30.0},
    )
    load = WebhookLoad(
        count=args.webhooks, concurrency=args.webhook_concurrency, warmup=args.webhook_concurrency
    )
    async with imagine_bot(settings, world):
        await run.world.wait_for_command()
        await run.world.burst(
            Burst(count=args.webhook_jobs, user_base=USERS_WEBHOOKS, ack_timeout=ACK_TIMEOUT)
        )
        predictions = await run.world.submitted_predictions(args.webhook_jobs, timeout=60.0)
        if not predictions:
            raise RuntimeError("no job reached the provider")
        ours = await run.world.webhooks(predictions, load)
        await asyncio.sleep(1.0)  # the polls the "succeeded" bodies woke
        async with bare_handler() as origin:
            bare = await run.world.webhooks(
                predictions,
                WebhookLoad(load.count, load.concurrency, load.warmup, origin=origin),
            )
    for name, result in (("bot", ours), ("bare", bare)):
        if set(result.statuses) != {200}:
            log.warning("%s answered webhooks with %s", name, result.statuses)
    notes = [
        f"{len(predictions)} jobs; answers {dict(sorted(ours.statuses.items()))} "
        f"(bare {dict(sorted(bare.statuses.items()))})",
        run.logs.take(),
    ]
    return [
        Figure(
            "webhooks",
            f"signed Replicate webhooks/s ({args.webhook_concurrency} connections, "
            "processing/succeeded)",
            load.count / ours.seconds,
            load.count / bare.seconds,
            "/s",
            "bare aiohttp handler, same loop",
            f"≥ 0.7{TIMES}",
            notes,
        )
    ]


async def reservations_row(run: Run) -> list[Figure]:
    reserved = await queue_bench.bench_reservations(run.args.reservations, run.workdir)
    inserted = await queue_bench.bench_insert_baseline(run.args.reservations, run.workdir)
    notes = [
        f"accepted {reserved.accepted} of {reserved.requests} (the limits allow exactly "
        f"{reserved.allowed}: 0 overspend)",
        run.logs.take(),
    ]
    return [
        Figure(
            "reservations",
            f"reservations/s, {reserved.requests:,} concurrent, 0 overspend",
            reserved.per_second,
            inserted.per_second,
            "/s",
            "one autocommit INSERT per request",
            f"≥ 0.8{TIMES}",
            notes,
        )
    ]


async def resume_row(run: Run) -> list[Figure]:
    resumed = await queue_bench.bench_resume(run.args.resume_jobs, run.workdir, in_process=False)
    states = ", ".join(f"{state.value} {n}" for state, n in sorted(resumed.states.items()))
    notes = [
        f"re-attached in {resumed.reattached_seconds:.2f} s; {states}; {resumed.polls} polls, "
        f"{resumed.downloads} downloads, {resumed.creates_during_resume} new creates",
        run.logs.take(),
    ]
    return [
        Figure(
            "resume",
            f"resume of {resumed.jobs:,} in-flight jobs until all delivered",
            resumed.delivered_seconds,
            resumed.fake_answer_seconds,
            "s",
            "the fake's own answer time for the same polls + downloads",
            f"≤ 1.3{TIMES}",
            notes,
        )
    ]


SCENARIOS: dict[str, Callable[[Run], Awaitable[list[Figure]]]] = {
    "ack": ack_row,
    "queued": queued_row,
    "e2e": e2e_row,
    "webhooks": webhooks_row,
    "reservations": reservations_row,
    "resume": resume_row,
}


# ---------------------------------------------------------------------- report


def show(value: float, unit: str) -> str:
    if math.isinf(value):
        return "never"
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.2f} s"
    if unit == "/s":
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    return f"{value:,.0f}"


def span(values: Sequence[float], unit: str) -> str:
    low, high = min(values), max(values)
    if show(low, unit) == show(high, unit):
        return show(low, unit)
    if unit == "s" and low < 1 <= high:
        return f"{show(low, unit)} {DASH} {show(high, unit)}"
    low_text, high_text = show(low, unit), show(high, unit)
    suffix = ""
    for unit_text in (" ms", " s"):
        if low_text.endswith(unit_text) and high_text.endswith(unit_text):
            low_text, suffix = low_text.removesuffix(unit_text), unit_text
            high_text = high_text.removesuffix(unit_text)
    return f"{low_text} {DASH} {high_text}{suffix}"


def ratio_span(ratios: Sequence[float | None]) -> str:
    known = [ratio for ratio in ratios if ratio is not None]
    if not known:
        return "—"
    low, high = min(known), max(known)
    digits = 2 if high < 10 else 1 if high < 100 else 0
    if f"{low:.{digits}f}" == f"{high:.{digits}f}":
        return f"{low:.{digits}f}{TIMES}"
    return f"{low:.{digits}f} {DASH} {high:.{digits}f}{TIMES}"


def table(runs: Sequence[Sequence[Figure]], failures: Sequence[str]) -> str:
    by_what: dict[str, list[Figure]] = {}
    for figures in runs:
        for figure in figures:
            by_what.setdefault(figure.what, []).append(figure)
    lines = [
        "| what | bot | baseline | ratio | goal |",
        "|---|---|---|---|---|",
    ]
    for what, figures in by_what.items():
        first = figures[0]
        bot = span([figure.bot for figure in figures], first.unit)
        baseline = span([figure.baseline for figure in figures], first.unit)
        ratio = ratio_span([figure.ratio for figure in figures])
        lines.append(f"| {what} | {bot} | {first.baseline_what}: {baseline} | {ratio} | "
                     f"{first.goal} |")  # fmt: skip
    for failure in failures:
        lines.append(f"| {failure} | error | | | |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hot_path",
        description="The bot's hot path against fake Discord and Replicate, beside baselines.",
    )

    def positive(value: str) -> int:
        number = int(value)
        if number < 1:
            raise argparse.ArgumentTypeError("must be at least 1")
        return number

    def rows(value: str) -> list[str]:
        chosen = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(chosen) - set(ROWS))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown rows {unknown}; choose from {ROWS}")
        return chosen

    parser.add_argument("--repeat", type=positive, default=3, help="runs of every row (3)")
    parser.add_argument("--only", type=rows, default=list(ROWS), help=f"rows: {','.join(ROWS)}")
    parser.add_argument("--guilds", type=positive, default=20, help="guilds at the fake (20)")
    parser.add_argument("--burst", type=positive, default=200, help="commands per burst (200)")
    parser.add_argument("--queued", type=positive, default=10_000, help="jobs queued (10000)")
    parser.add_argument("--samples", type=positive, default=10, help="single commands (10)")
    parser.add_argument("--webhook-jobs", type=positive, default=100, help="jobs (100)")
    parser.add_argument("--webhooks", type=positive, default=3000, help="webhooks posted (3000)")
    parser.add_argument("--webhook-concurrency", type=positive, default=32, help="(32)")
    parser.add_argument("--reservations", type=positive, default=1000, help="requests (1000)")
    parser.add_argument("--resume-jobs", type=positive, default=1000, help="jobs (1000)")
    parser.add_argument(
        "--settle", type=float, default=2.0, help="pause after the ack burst, s (2)"
    )
    parser.add_argument("--post-timeout", type=float, default=120.0, help="e2e wait, s (120)")
    parser.add_argument("--log-level", default="INFO", help="the bot's log level (INFO)")
    parser.add_argument(
        "--log-file", type=Path, help="keep the bot's log there (default: a temporary file)"
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    image, _ = render_image(IMAGE_PROMPT, "1:1", png=False)
    runs: list[list[Figure]] = []
    failures: list[str] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imagine-hot-path-") as directory:
        root = Path(directory)
        logs = LogCounter()
        handler = logging.FileHandler(args.log_file or root / "bot.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=args.log_level.upper(), handlers=[handler, logs], force=True)
        for repetition in range(1, args.repeat + 1):
            figures: list[Figure] = []
            workdir = root / f"run-{repetition}"
            workdir.mkdir()
            async with fake_world() as world:
                this_run = Run(args, world, workdir, logs, image)
                for name in args.only:
                    started = time.perf_counter()
                    try:
                        measured = await SCENARIOS[name](this_run)
                    except Exception as exc:
                        logs.take()
                        failures.append(f"{name} (run {repetition}): {type(exc).__name__}: {exc}")
                        print(f"run {repetition} {name}: FAILED: {exc!r}", flush=True)
                        continue
                    seconds = time.perf_counter() - started
                    for figure in measured:
                        ratio = "" if figure.ratio is None else f" = {figure.ratio:.2f}x"
                        print(
                            f"run {repetition} {figure.what}: {show(figure.bot, figure.unit)} "
                            f"vs {figure.baseline_what} {show(figure.baseline, figure.unit)}"
                            f"{ratio}",
                            flush=True,
                        )
                        for note in figure.notes:
                            print(f"    {note}", flush=True)
                    print(f"    ({name}: {seconds:.0f} s)", flush=True)
                    figures.extend(measured)
            runs.append(figures)
    print(f"\n{args.repeat} run(s) in {time.perf_counter() - began:.0f} s; ranges over the runs:")
    print(table(runs, failures), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
