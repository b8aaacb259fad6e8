"""Delivery memory benchmark: the peak extra memory of one 8 MiB image, from download to post.

One image of about 8 MiB (colour noise from Pillow, so the encoder cannot shrink it; a JPEG,
or a PNG with ``--format png``) is served from a child process by an aiohttp server on
127.0.0.1, so neither its bytes nor the server's buffers are counted. In this process it is
downloaded through the bot's ``HttpClient.download_image`` (source checks, size cap, image
check), saved by ``ImageStore.save``, turned into what the publisher posts
(``DeliveryService``'s attachments, ``bot.publisher``'s ``discord.File`` list) and uploaded as
discord.py uploads it: its multipart form posted with aiohttp to the child, which reads it
through. A warm-up delivery of a small image first keeps lazily built state (the connection,
Pillow's plugins) out of the figures.

Two figures, each beside the image's size (the baseline):

- peak extra traced memory: Python allocations during the delivery (tracemalloc) above what
  was live before it;
- growth of the process's peak resident set (ru_maxrss). It also sees C allocations that
  tracemalloc does not: Pillow's pixel buffers (a full-size decode for a PNG, 1/64 of it for
  a JPEG in draft mode), libjpeg's and zlib's state, and tracemalloc's own bookkeeping, so it
  is an upper bound. It only grows, so run the script once per figure wanted.

The script also runs against the code before issue 9 (where ``HttpClient`` takes no spool),
to measure the "before" figure in a worktree of that commit.

    .venv/bin/python -m benchmarks.memory [--format jpeg|png] [--megabytes 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import math
import multiprocessing
import os
import resource
import tempfile
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
from aiohttp import web
from discord.http import handle_message_parameters
from PIL import Image as PillowImage

from bot.core.delivery import DeliveryService
from bot.core.domain import Job, JobState
from bot.core.images import ImageStore
from bot.core.providers.http import HttpClient
from bot.core.providers.image_sources import ImageSources
from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from bot.publisher import _files
from tests.factories import a_request, a_target
from tests.fakes.recording_publisher import RecordingPublisher

MIB = 1024 * 1024
_FORMATS = {"jpeg": ("JPEG", "jpg", {"quality": 95}), "png": ("PNG", "png", {})}
_WARM_UP_SIDE = 256


def noise_image(fmt: str, side: int) -> bytes:
    pillow_format, _, options = _FORMATS[fmt]
    bands = [PillowImage.effect_noise((side, side), 64) for _ in range(3)]
    buffer = io.BytesIO()
    PillowImage.merge("RGB", bands).save(buffer, format=pillow_format, **options)
    return buffer.getvalue()


def sample(fmt: str, megabytes: float) -> bytes:
    """A square noise image of about ``megabytes`` MiB: the side is corrected a few times,
    as the encoded size grows with the pixel count."""
    side = 2048
    data = noise_image(fmt, side)
    for _ in range(3):
        side = round(side * math.sqrt(megabytes * MIB / len(data)))
        data = noise_image(fmt, side)
    return data


def serve(connection: Connection, fmt: str, megabytes: float) -> None:
    """The child process: the images on GET, an upload read through on POST."""
    asyncio.run(_serve(connection, fmt, megabytes))


async def _serve(connection: Connection, fmt: str, megabytes: float) -> None:
    extension = _FORMATS[fmt][1]

    async def upload(request: web.Request) -> web.Response:
        received = 0
        async for chunk in request.content.iter_chunked(64 * 1024):
            received += len(chunk)
        return web.json_response({"received": received})

    with tempfile.TemporaryDirectory() as directory:
        files = Path(directory)
        image = sample(fmt, megabytes)
        (files / f"image.{extension}").write_bytes(image)
        (files / f"warm-up.{extension}").write_bytes(noise_image(fmt, _WARM_UP_SIDE))
        app = web.Application()
        app.router.add_static("/files", files)
        app.router.add_post("/upload", upload)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        with PillowImage.open(io.BytesIO(image)) as picture:
            connection.send((runner.addresses[0][1], len(image), picture.size))
        await asyncio.to_thread(connection.recv)  # until the parent is done
        await runner.cleanup()


@dataclass
class Deliverer:
    """The bot's pieces, built once so that the measured delivery builds nothing new."""

    origin: str
    session: aiohttp.ClientSession
    http: HttpClient
    store: ImageStore
    delivery: DeliveryService

    async def deliver(self, name: str, job_id: int) -> int:
        """Download, check, save and post one image; the bytes the upload carried."""
        paths = await self._stored(name, job_id)
        now = datetime.now(UTC)
        job = Job(
            id=job_id,
            state=JobState.SUCCEEDED,
            request=a_request(),
            target=a_target(attachment_size_limit=25 * MIB),
            provider="loopback",
            provider_job_id="p1",
            callback_token="t",  # noqa: S106 - no callback reaches this job
            attempts=1,
            error=None,
            delivery_error=None,
            image_paths=tuple(paths),
            created_at=now,
            updated_at=now,
        )
        # What DiscordPublisher.post_in_channel sends, built as it builds it, and posted as
        # discord.py's HTTPClient posts a multipart message.
        [result] = await self.delivery._results([job])
        with handle_message_parameters(content="<@1>", files=_files(result.attachments)) as params:
            assert params.multipart is not None
            form = aiohttp.FormData(quote_fields=False)
            for part in params.multipart:
                form.add_field(**part)
            async with self.session.post(f"{self.origin}/upload", data=form) as response:
                received: int = (await response.json())["received"]
        return received

    async def _stored(self, name: str, job_id: int) -> list[Path]:
        """As the job service does it: the downloaded images are gone once they are saved."""
        sources = ImageSources.of(self.origin, [], public_hosts=False)
        image = await self.http.download_image(
            f"{self.origin}/files/{name}", sources=sources, timeout=60
        )
        return await self.store.save(f"job-{job_id}", [image])


def http_client(session: aiohttp.ClientSession, store: ImageStore) -> HttpClient:
    """Spooling into the store, as the runner wires it; before issue 9 there is no spool."""
    spool = getattr(store, "spool", None)
    return HttpClient(session) if spool is None else HttpClient(session, spool=spool)


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


async def measure(port: int, extension: str, workdir: Path) -> tuple[int, int, int]:
    """Bytes uploaded, peak extra traced memory and peak RSS growth of one delivery."""
    database = await open_database(workdir / "bench.sqlite3")
    try:
        async with aiohttp.ClientSession() as session:
            store = ImageStore(workdir / "images")
            delivery = DeliveryService(RecordingPublisher(), store, JobRepository(database))
            deliverer = Deliverer(
                f"http://127.0.0.1:{port}", session, http_client(session, store), store, delivery
            )
            await deliverer.deliver(f"warm-up.{extension}", 1)
            gc.collect()
            rss_before = peak_rss_bytes()
            tracemalloc.start()
            uploaded = await deliverer.deliver(f"image.{extension}", 2)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return uploaded, peak, peak_rss_bytes() - rss_before
    finally:
        await database.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", choices=sorted(_FORMATS), default="jpeg")
    parser.add_argument("--megabytes", type=float, default=8.0)
    arguments = parser.parse_args(argv)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=serve, args=(theirs, arguments.format, arguments.megabytes))
    server.start()
    try:
        port, size, (width, height) = ours.recv()
        with tempfile.TemporaryDirectory() as directory:
            extension = _FORMATS[arguments.format][1]
            uploaded, peak, rss = asyncio.run(measure(port, extension, Path(directory)))
    finally:
        ours.send("stop")
        server.join()
    assert uploaded >= size, "the upload did not carry the whole image"
    print(f"cpu_count: {os.cpu_count()}")
    print(f"image (baseline): {arguments.format} {width}x{height}, {size / MIB:.2f} MiB")
    print(f"peak extra traced memory: {peak / MIB:.2f} MiB, ratio {peak / size:.2f}x")
    print(f"peak RSS growth: {rss / MIB:.2f} MiB, ratio {rss / size:.2f}x")


if __name__ == "__main__":
    main()
