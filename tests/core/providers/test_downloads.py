"""Images are streamed to a spool file as they arrive (issue 9): a real server on 127.0.0.1,
real files, and nothing left behind by a download that fails, is refused or is cancelled."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image as PillowImage

from bot.core.errors import NotAnImage, ProviderUnavailable, ResultUnavailable, UnsafeImageSource
from bot.core.images import Image, ImageSpool, ImageStore
from bot.core.providers.http import CHUNK_BYTES, MAX_DOWNLOAD_BYTES, HttpClient
from bot.core.providers.image_sources import ImageSources
from tests.fakes.loopback import FakeServer

TIMEOUT_SECONDS = 10.0


def noise_png(side: int) -> bytes:
    """Noise, so the PNG is large enough (~0.8 MB) to arrive in many chunks."""
    buffer = io.BytesIO()
    PillowImage.effect_noise((side, side), 64).convert("RGB").save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = noise_png(512)
HALF = len(IMAGE) // 2


class ImageHost(FakeServer):
    """A file host that can hold an image half sent, send one without end, or send junk."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/image.png", self._whole)
        app.router.add_get("/held.png", self._held)
        app.router.add_get("/endless.png", self._endless)
        app.router.add_get("/declared-huge.png", self._declared_huge)
        app.router.add_get("/page.html", self._page)
        app.router.add_get("/cut.png", self._cut)
        app.router.add_get("/moved", self._moved)
        app.router.add_get("/recorded.png", self._recorded)

    def url(self, name: str) -> str:
        return f"{self.origin}/{name}"

    async def _whole(self, _: web.Request) -> web.Response:
        return web.Response(body=IMAGE, content_type="image/png")

    async def _held(self, request: web.Request) -> web.StreamResponse:
        """The first half of the image, then the rest once the test releases it."""
        response = web.StreamResponse()
        response.content_type = "image/png"
        await response.prepare(request)
        await response.write(IMAGE[:HALF])
        await self.release.wait()
        with contextlib.suppress(ConnectionError):  # unless the client gave up
            await response.write(IMAGE[HALF:])
            await response.write_eof()
        return response

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        """Chunked, with no Content-Length: only counting what arrives can stop it."""
        response = web.StreamResponse()
        response.content_type = "image/png"
        await response.prepare(request)
        chunk = IMAGE[:CHUNK_BYTES]
        with contextlib.suppress(ConnectionError):
            for _ in range(2 * MAX_DOWNLOAD_BYTES // len(chunk)):
                await response.write(chunk)
        return response

    async def _declared_huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "image/png"
        response.content_length = MAX_DOWNLOAD_BYTES + 1
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(IMAGE[:CHUNK_BYTES])
            await self.release.wait()
        return response

    async def _page(self, _: web.Request) -> web.Response:
        return web.Response(text="<html><body>maintenance</body></html>", content_type="text/html")

    async def _cut(self, _: web.Request) -> web.Response:
        return web.Response(body=IMAGE[: len(IMAGE) - 100], content_type="image/png")

    async def _moved(self, request: web.Request) -> web.Response:
        """A redirect to wherever ``?to=`` says, as a CDN's signed-URL hop would be."""
        await self.record(request)
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def _recorded(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(body=IMAGE, content_type="image/png")


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    async with ImageHost() as server:
        yield server
        server.release.set()


@pytest.fixture
def sources(host: ImageHost) -> ImageSources:
    return ImageSources.of(host.origin, [], public_hosts=False)


def left_in(spool: ImageSpool) -> list[Path]:
    return sorted(spool.directory.iterdir()) if spool.directory.exists() else []


async def half_written(spool: ImageSpool) -> Path:
    """The one spool file once it holds the first half the host sent, but for what may still
    sit in the file object's buffer: proof that the body goes to disk as it arrives."""
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while True:
            files = left_in(spool)
            if files and files[0].stat().st_size >= HALF - io.DEFAULT_BUFFER_SIZE:
                [file] = files
                return file
            await asyncio.sleep(0.01)


async def download(http: HttpClient, url: str, sources: ImageSources) -> Image:
    return await http.download_image(url, sources=sources, timeout=TIMEOUT_SECONDS)


async def test_a_download_is_written_to_the_spool_as_it_arrives(
    host: ImageHost, http: HttpClient, spool: ImageSpool, sources: ImageSources
) -> None:
    downloading = asyncio.create_task(download(http, host.url("held.png"), sources))

    partial = await half_written(spool)
    assert IMAGE[:HALF].startswith(partial.read_bytes())
    assert not downloading.done()
    host.release.set()
    image = await downloading

    assert image == Image(partial, "png")
    assert image.path.read_bytes() == IMAGE


async def test_a_downloaded_image_is_saved_by_a_rename(
    host: ImageHost, http: HttpClient, store: ImageStore, sources: ImageSources
) -> None:
    image = await download(http, host.url("image.png"), sources)
    inode = image.path.stat().st_ino

    [path] = await store.save("job-1", [image])

    assert path.stat().st_ino == inode
    assert path.read_bytes() == IMAGE
    assert left_in(store.spool) == []


@pytest.mark.parametrize(
    ("name", "refusal"),
    [("endless.png", "response larger than"), ("declared-huge.png", "response of")],
)
async def test_a_body_past_the_cap_is_refused_and_leaves_no_file(
    host: ImageHost,
    http: HttpClient,
    spool: ImageSpool,
    sources: ImageSources,
    name: str,
    refusal: str,
) -> None:
    with pytest.raises(ProviderUnavailable, match=refusal):
        await download(http, host.url(name), sources)

    assert left_in(spool) == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("page.html", NotAnImage),
        ("cut.png", NotAnImage),
        ("gone.png", ResultUnavailable),  # 404: the provider deleted it
        ("data:image/png;base64,not*base64", ResultUnavailable),
        ("data:image/png;base64," + base64.b64encode(b"<html>").decode(), NotAnImage),
        ("http://127.0.0.1:9/image.png", UnsafeImageSource),  # not the provider's origin
    ],
    ids=["html", "truncated", "404", "bad-data-uri", "data-uri-not-an-image", "refused-host"],
)
async def test_a_failed_or_refused_download_leaves_no_file(
    host: ImageHost,
    http: HttpClient,
    spool: ImageSpool,
    sources: ImageSources,
    url: str,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await download(http, url if ":" in url else host.url(url), sources)

    assert left_in(spool) == []


async def test_an_inline_image_is_written_to_the_spool(
    http: HttpClient, spool: ImageSpool, sources: ImageSources
) -> None:
    uri = "data:image/png;base64," + base64.b64encode(IMAGE).decode()

    image = await download(http, uri, sources)

    assert left_in(spool) == [image.path]
    assert image.path.read_bytes() == IMAGE


async def test_a_cancelled_download_leaves_no_file(
    host: ImageHost, http: HttpClient, spool: ImageSpool, sources: ImageSources
) -> None:
    downloading = asyncio.create_task(download(http, host.url("held.png"), sources))
    await half_written(spool)

    downloading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await downloading

    assert left_in(spool) == []


async def test_when_one_image_of_a_job_fails_none_is_kept(
    host: ImageHost, http: HttpClient, spool: ImageSpool, sources: ImageSources
) -> None:
    urls = [host.url("image.png"), host.url("page.html")]

    with pytest.raises(NotAnImage):
        await http.download_images(urls, sources=sources, timeout=TIMEOUT_SECONDS)

    assert left_in(spool) == []


CREDENTIALS = {"Authorization": "Bearer r8_secret"}


async def test_credentials_follow_a_redirect_within_the_origin(
    host: ImageHost, http: HttpClient, sources: ImageSources
) -> None:
    moved = f"{host.url('moved')}?to=/recorded.png"

    await http.download_image(moved, sources=sources, headers=CREDENTIALS, timeout=TIMEOUT_SECONDS)

    [_, hop] = host.requests
    assert hop.headers["Authorization"] == CREDENTIALS["Authorization"]


async def test_credentials_do_not_follow_a_redirect_to_another_port_of_the_host(
    host: ImageHost, http: HttpClient
) -> None:
    async with ImageHost() as other_port:
        sources = ImageSources.of(host.origin, [f"127.0.0.1:{other_port.port}"], public_hosts=False)
        moved = f"{host.url('moved')}?to={other_port.url('recorded.png')}"

        image = await http.download_image(
            moved, sources=sources, headers=CREDENTIALS, timeout=TIMEOUT_SECONDS
        )

        [hop] = other_port.requests_to("GET", "/recorded.png")
    assert image.path.read_bytes() == IMAGE
    assert "Authorization" not in hop.headers


@pytest.mark.parametrize(
    "url",
    ["http://exa\\mple.com/a.png", "http://127.0.0.1\\@evil.example/a.png", "http://[::1/a.png"],
)
async def test_an_output_url_that_cannot_be_parsed_is_an_unsafe_source(
    http: HttpClient, spool: ImageSpool, sources: ImageSources, url: str
) -> None:
    with pytest.raises(UnsafeImageSource):
        await download(http, url, sources)

    assert left_in(spool) == []


async def test_a_redirect_to_a_location_that_cannot_be_parsed_is_an_unsafe_source(
    host: ImageHost, http: HttpClient, sources: ImageSources
) -> None:
    with pytest.raises(UnsafeImageSource):
        await download(http, f"{host.url('moved')}?to=http://a\\b.example/x.png", sources)
