"""The outside world of the hot-path benchmark, in a process of its own: fake Discord (REST and
gateway, many guilds), fake Replicate, and the load generators that play Discord's members and
Replicate's webhook sender.

Discord and Replicate are other machines in production; here they run in a child process with
its own event loop, so their work (JSON, zlib, multipart parsing, image encoding) does not share
the bot's event loop, and every time is taken on *this* process's clock (``loop.time()``) where
the fake sends an event or receives a request, unaffected by how busy the bot is. The bot and
its baselines run in the parent and are measured the same way, so their figures compare.

The parent drives this process through :class:`World` (a pipe carrying picklable dataclasses);
everything here talks to the bot over 127.0.0.1 only, the way Discord and Replicate would.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import multiprocessing
import secrets
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from tests.fakes import fake_replicate
from tests.fakes.fake_discord import FakeDiscord, FakeInteraction
from tests.fakes.fake_replicate import FakeReplicate, Prediction
from tests.fakes.loopback import render_image

T = TypeVar("T")

# The one prompt the fake renders: every download serves the same pre-encoded JPEG, so the
# fake's own image encoding (several ms per 1024x1024 JPEG) stays out of the figures.
IMAGE_PROMPT = "hot path benchmark"
COMMAND = "imagine"


# ---------------------------------------------------------------------- messages


@dataclass(frozen=True)
class WorldSpec:
    """What to start: ``guilds`` guilds at the fake Discord and a fake Replicate whose
    predictions take ``start_delay + processing_seconds`` (0 + 0: an instant provider)."""

    guilds: int
    start_delay: float
    processing_seconds: float


@dataclass(frozen=True)
class WorldInfo:
    """Where the fakes listen and who the bot is there."""

    discord_base_url: str
    discord_gateway_url: str
    discord_token: str
    guild_ids: list[int]
    channel_ids: list[int]
    replicate_base_url: str
    replicate_token: str


@dataclass(frozen=True)
class Burst:
    """``count`` /imagine commands sent back to back, dealt round the guilds, each from its own
    member (user ``user_base + n``)."""

    count: int
    user_base: int
    ack_timeout: float
    # Also wait until each accepted reply has shown the member an answer (a deferral filled).
    wait_for_shown: bool = False
    # Also wait until ``count`` new messages are posted in the guilds' channels.
    wait_for_posts: bool = False
    post_timeout: float = 120.0


@dataclass(frozen=True)
class BurstResult:
    # Seconds from INTERACTION_CREATE to the first callback request (accepted or too late);
    # None when the bot sent none within the timeout.
    acks: list[float | None]
    # Seconds until the member saw an answer (the reply, or what filled a deferral); None
    # when nothing was shown by the time the callbacks were collected.
    shown: list[float | None]
    accepted: int  # callbacks Discord accepted (inside the deadline)
    sending_seconds: float  # how long sending the commands took
    posts: int = 0  # new channel messages seen
    posts_with_files: int = 0
    # From the first INTERACTION_CREATE to the ``count``-th new channel message (None if fewer).
    completion_seconds: float | None = None


@dataclass(frozen=True)
class Single:
    """One command on its own: seconds to the first callback request and to the answer shown
    (None: none within 30 s)."""

    ack: float | None
    shown: float | None


@dataclass(frozen=True)
class WebhookLoad:
    """``count`` signed Replicate webhooks posted with ``concurrency`` connections, cycling over
    the predictions and alternating "processing" and "succeeded" bodies."""

    count: int
    concurrency: int
    warmup: int
    # Send to this origin (scheme://host:port) instead of the one in each webhook URL.
    origin: str | None = None


@dataclass(frozen=True)
class WebhookResult:
    seconds: float
    statuses: dict[int, int] = field(default_factory=dict)


# ---------------------------------------------------------------------- the child process


def _one_image(render: Callable[..., tuple[bytes, str]]) -> Callable[..., tuple[bytes, str]]:
    @functools.lru_cache(maxsize=16)
    def encoded(aspect_ratio: str, png: bool) -> tuple[bytes, str]:
        return render(IMAGE_PROMPT, aspect_ratio, png=png)

    def cached(prompt: str, aspect_ratio: str, *, png: bool) -> tuple[bytes, str]:
        return encoded(aspect_ratio, png)

    return cached


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


class _Fakes:
    """The fakes of one scenario and the requests the parent can make of them."""

    def __init__(self) -> None:
        self.discord: FakeDiscord | None = None
        self.replicate: FakeReplicate | None = None

    async def close(self) -> None:
        if self.discord is not None:
            await self.discord.close()
            self.discord = None
        if self.replicate is not None:
            await self.replicate.close()
            self.replicate = None

    def _both(self) -> tuple[FakeDiscord, FakeReplicate]:
        assert self.discord is not None, "reset first"
        assert self.replicate is not None, "reset first"
        return self.discord, self.replicate

    # -- requests from the parent, each ``rpc_<name>`` ----------------------------------------

    async def rpc_reset(self, spec: WorldSpec) -> WorldInfo:
        await self.close()
        discord = FakeDiscord(guilds=spec.guilds)
        replicate = FakeReplicate(
            mode="official",
            start_delay=spec.start_delay,
            processing_seconds=spec.processing_seconds,
        )
        await discord.start()
        await replicate.start()
        self.discord, self.replicate = discord, replicate
        return WorldInfo(
            discord_base_url=discord.base_url,
            discord_gateway_url=discord.gateway_url,
            discord_token=discord.token,
            guild_ids=discord.guild_ids,
            channel_ids=list(discord.guild_channels.values()),
            replicate_base_url=replicate.base_url,
            replicate_token=replicate.token,
        )

    async def rpc_wait_for_command(self, timeout: float) -> None:
        discord, _ = self._both()
        await discord.wait_until(
            f"/{COMMAND} synced",
            lambda: any(command["name"] == COMMAND for command in discord.global_commands),
            timeout,
        )

    async def rpc_burst(self, burst: Burst) -> BurstResult:
        discord, _ = self._both()
        loop = asyncio.get_running_loop()
        posts_before = discord.channel_message_count
        channels = discord.guild_channels.values()
        seen = {channel: len(discord.channel_messages.get(channel, [])) for channel in channels}
        guilds = discord.guild_ids
        began = loop.time()
        interactions: list[FakeInteraction] = []
        for n in range(burst.count):
            interactions.append(
                await discord.invoke_slash_command(
                    COMMAND,
                    {"prompt": f"a lighthouse at dusk, number {n}"},
                    guild_id=guilds[n % len(guilds)],
                    user_id=burst.user_base + n,
                )
            )
        sending = loop.time() - began

        def answered(interaction: FakeInteraction) -> bool:
            if interaction.callback_attempted_at is None:
                return False
            # A refused (late) callback will never show anything.
            refused = interaction.responded_at is None
            return not burst.wait_for_shown or refused or interaction.shown_delay is not None

        with contextlib.suppress(TimeoutError):
            await discord.wait_until(
                "an answer to every command",
                lambda: all(answered(interaction) for interaction in interactions),
                burst.ack_timeout,
            )
        result = BurstResult(
            acks=[interaction.attempt_delay for interaction in interactions],
            shown=[interaction.shown_delay for interaction in interactions],
            accepted=sum(interaction.responded_at is not None for interaction in interactions),
            sending_seconds=sending,
        )
        if not burst.wait_for_posts:
            return result
        start = interactions[0].created_at if interactions else began
        completion: float | None = None
        with contextlib.suppress(TimeoutError):
            await discord.wait_until(
                f"{burst.count} posts in the channels",
                lambda: discord.channel_message_count - posts_before >= burst.count,
                max(0.0, burst.post_timeout - (loop.time() - began)),
            )
            completion = loop.time() - start
        new_posts = [
            record
            for channel, before in seen.items()
            for record in discord.channel_messages.get(channel, [])[before:]
        ]
        return BurstResult(
            acks=result.acks,
            shown=result.shown,
            accepted=result.accepted,
            sending_seconds=sending,
            posts=discord.channel_message_count - posts_before,
            posts_with_files=sum(bool(record["attachments"]) for record in new_posts),
            completion_seconds=completion,
        )

    async def rpc_one_by_one(self, count: int, user_base: int, pause: float) -> list[Single]:
        """``count`` single /imagine commands, each sent once the previous one was answered
        (shown to the member), ``pause`` seconds apart."""
        discord, _ = self._both()
        guilds = discord.guild_ids
        delays: list[Single] = []
        for n in range(count):
            interaction = await discord.invoke_slash_command(
                COMMAND,
                {"prompt": f"a single lighthouse, number {n}"},
                guild_id=guilds[n % len(guilds)],
                user_id=user_base + n,
            )
            with contextlib.suppress(TimeoutError):
                await discord.wait_until(
                    "an answer shown", functools.partial(_shown, interaction), 30.0
                )
            delays.append(Single(interaction.attempt_delay, interaction.shown_delay))
            await asyncio.sleep(pause)
        return delays

    async def rpc_submitted_predictions(self, count: int, timeout: float) -> list[str]:
        """Wait until ``count`` predictions exist and each was polled once (so the bot has
        recorded it as submitted); return their ids."""
        _, replicate = self._both()
        deadline = time.monotonic() + timeout
        while True:
            polled = {
                request.path.rsplit("/", 1)[-1]
                for request in replicate.requests_to("GET", "/predictions/")
            }
            ready = [pid for pid in replicate.predictions if pid in polled]
            if len(ready) >= count or time.monotonic() > deadline:
                return ready
            await asyncio.sleep(0.05)

    async def rpc_fake_requests(self) -> dict[str, int]:
        """Requests the fakes received, by kind, for the notes."""
        discord, replicate = self._both()
        kinds: Counter[str] = Counter()
        for method, path in discord.requests:
            if "/callback" in path:
                kinds["discord callbacks"] += 1
            elif method == "PATCH":
                kinds["discord edits"] += 1
            elif "/channels/" in path:
                kinds["discord channel posts"] += 1
        kinds["replicate creates"] = replicate.create_count
        kinds["replicate polls"] = len(replicate.requests_to("GET", "/predictions/"))
        kinds["replicate downloads"] = len(replicate.requests_to("GET", "/delivery/"))
        return dict(kinds)

    async def rpc_webhooks(self, prediction_ids: Sequence[str], load: WebhookLoad) -> WebhookResult:
        _, replicate = self._both()
        predictions = [replicate.predictions[pid] for pid in prediction_ids]
        bodies = {
            (prediction.id, status): _webhook_body(replicate, prediction, status)
            for prediction in predictions
            for status in ("processing", "succeeded")
        }
        targets = [_target(prediction, load.origin) for prediction in predictions]

        def deliveries(count: int) -> list[tuple[str, bytes]]:
            plan = []
            for n, (prediction, url) in zip(
                range(count), itertools.cycle(zip(predictions, targets, strict=True)), strict=False
            ):
                status = "processing" if n % 2 == 0 else "succeeded"
                plan.append((url, bodies[(prediction.id, status)]))
            return plan

        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=load.concurrency)
        ) as session:
            # Warm-up: connections, and the bot's one fetch of the signing secret.
            await _post_all(session, replicate, deliveries(load.warmup), load.concurrency)
            began = time.perf_counter()
            statuses = await _post_all(session, replicate, deliveries(load.count), load.concurrency)
            seconds = time.perf_counter() - began
        return WebhookResult(seconds, dict(statuses))


def _shown(interaction: FakeInteraction) -> bool:
    return interaction.shown_delay is not None


def _target(prediction: Prediction, origin: str | None) -> str:
    assert prediction.webhook is not None, "the bot gave no webhook URL (no public_url?)"
    if origin is None:
        return prediction.webhook
    parts, new = urlsplit(prediction.webhook), urlsplit(origin)
    return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, ""))


def _webhook_body(replicate: FakeReplicate, prediction: Prediction, status: str) -> bytes:
    """A prediction object as Replicate posts it (providers.md §1.5), for a job that exists."""
    now = time.time()
    body: dict[str, Any] = {
        "id": prediction.id,
        "model": prediction.model,
        "version": "hidden",
        "input": prediction.input,
        "logs": "",
        "output": None,
        "data_removed": False,
        "error": None,
        "status": status,
        "created_at": _iso(prediction.created),
        "started_at": _iso(prediction.created),
        "urls": {
            "get": f"{replicate.base_url}/predictions/{prediction.id}",
            "cancel": f"{replicate.base_url}/predictions/{prediction.id}/cancel",
            "web": f"https://replicate.com/p/{prediction.id}",
        },
    }
    if status == "succeeded":
        body.update(
            output=f"{replicate.origin}/delivery/{prediction.id}/output.jpg",
            completed_at=_iso(now),
            metrics={"predict_time": 1.0, "image_count": 1},
        )
    return json.dumps(body).encode()


async def _post_all(
    session: aiohttp.ClientSession,
    replicate: FakeReplicate,
    plan: Sequence[tuple[str, bytes]],
    concurrency: int,
) -> Counter[int]:
    """Post every (url, body), signed the moment it is sent, ``concurrency`` at a time."""
    statuses: Counter[int] = Counter()
    work = iter(plan)

    async def worker() -> None:
        for url, body in work:
            headers = {"Content-Type": "application/json"}
            webhook_id = "msg_" + secrets.token_urlsafe(18)
            headers.update(replicate.signature_headers(webhook_id, int(time.time()), body))
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def serve_world(connection: Connection) -> None:
    """The child process's entry point."""
    asyncio.run(_serve_world(connection))


async def _serve_world(connection: Connection) -> None:
    # The fake looks its renderer up as a module global at every download.
    fake_replicate.render_image = _one_image(render_image)  # type: ignore[attr-defined]
    fakes = _Fakes()
    try:
        while True:
            try:
                message = await asyncio.to_thread(connection.recv)
            except EOFError:
                return
            name, args = message
            if name == "stop":
                connection.send(("ok", None))
                return
            try:
                result = await getattr(fakes, f"rpc_{name}")(*args)
            except Exception:
                connection.send(("error", traceback.format_exc()))
            else:
                connection.send(("ok", result))
    finally:
        await fakes.close()


# ---------------------------------------------------------------------- the parent's handle


class World:
    """The parent's handle on the child process; each method is one round trip."""

    def __init__(self, ours: Connection) -> None:
        self._connection = ours
        self._lock = asyncio.Lock()

    async def _call(self, name: str, *args: object) -> object:
        def round_trip() -> tuple[str, object]:
            self._connection.send((name, args))
            answer: tuple[str, object] = self._connection.recv()
            return answer

        async with self._lock:
            status, result = await asyncio.to_thread(round_trip)
        if status == "error":
            raise RuntimeError(f"fake world: {name} failed:\n{result}")
        return result

    async def reset(self, spec: WorldSpec) -> WorldInfo:
        return _typed(WorldInfo, await self._call("reset", spec))

    async def wait_for_command(self, timeout: float = 30.0) -> None:
        await self._call("wait_for_command", timeout)

    async def burst(self, burst: Burst) -> BurstResult:
        return _typed(BurstResult, await self._call("burst", burst))

    async def one_by_one(self, count: int, user_base: int, pause: float) -> list[Single]:
        return _typed(list, await self._call("one_by_one", count, user_base, pause))

    async def submitted_predictions(self, count: int, timeout: float) -> list[str]:
        return _typed(list, await self._call("submitted_predictions", count, timeout))

    async def fake_requests(self) -> dict[str, int]:
        return _typed(dict, await self._call("fake_requests"))

    async def webhooks(self, prediction_ids: Sequence[str], load: WebhookLoad) -> WebhookResult:
        return _typed(WebhookResult, await self._call("webhooks", list(prediction_ids), load))


def _typed(kind: type[T], value: object) -> T:
    assert isinstance(value, kind), f"fake world answered {type(value).__name__}, not {kind}"
    return value


@contextlib.asynccontextmanager
async def fake_world() -> AsyncIterator[World]:
    """Start the child process; stop it at the end."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=serve_world, args=(theirs,), name="fake-world", daemon=True)
    process.start()
    try:
        yield World(ours)
    finally:
        with contextlib.suppress(OSError, EOFError):
            ours.send(("stop", ()))
            await asyncio.to_thread(ours.recv)
        await asyncio.to_thread(process.join, 10.0)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 5.0)
        ours.close()
