"""Image check benchmark: what proving a download is a real image costs, beside the download.

Every image a provider returns is decoded to the end by Pillow before it is saved
(``bot.core.images.checked_image``, issue 8), from the spool file it was streamed to (issue 9;
a JPEG in draft mode). This prints, per Imagen-sized image (a 1408x768 JPEG and a 2816x1536
PNG, Imagen's 16:9 sizes at 1K and 2K), the median time of that check beside the baseline
measured in the same run: streaming the same bytes from an aiohttp server on 127.0.0.1 to a
file in the bot's 64 KiB reads, as ``HttpClient.download_image`` does before its check (what
every result costs anyway).

    .venv/bin/python -m benchmarks.images [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web
from PIL import Image as PillowImage

from bot.core.images import checked_image
from bot.core.providers.http import CHUNK_BYTES

SAMPLES = {"jpeg 1408x768": ("JPEG", (1408, 768)), "png 2816x1536": ("PNG", (2816, 1536))}


def sample(fmt: str, size: tuple[int, int]) -> bytes:
    """A noisy picture, so the encoder cannot shrink it to nothing as it would a flat one."""
    picture = PillowImage.effect_noise(size, 64).convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt)
    return buffer.getvalue()


async def median_download(data: bytes, target: Path, rounds: int) -> float:
    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=data, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/image", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    timings: list[float] = []
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(rounds):
                started = time.perf_counter()
                written = 0
                async with session.get(f"http://127.0.0.1:{port}/image") as response:
                    with target.open("wb") as file:
                        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                            written += file.write(chunk)
                timings.append(time.perf_counter() - started)
                assert written == len(data)
    finally:
        await runner.cleanup()
    return statistics.median(timings)


def median_check(path: Path, rounds: int) -> float:
    timings: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        checked_image(path)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args(argv).rounds
    print(f"cpu_count: {os.cpu_count()}")
    for name, (fmt, size) in SAMPLES.items():
        data = sample(fmt, size)
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "image"
            download = asyncio.run(median_download(data, path, rounds))
            check = median_check(path, rounds)
        print(
            f"{name} ({len(data) / 1e6:.2f} MB): check {check * 1000:.1f} ms, "
            f"loopback download (baseline) {download * 1000:.1f} ms, "
            f"ratio {check / download:.2f}x"
        )


if __name__ == "__main__":
    main()
