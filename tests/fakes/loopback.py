"""What every fake provider shares: a loopback server, scripted answers, Imagen-sized images."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web
from PIL import Image as PillowImage

# Imagen 4's output sizes per aspect ratio at 1K (providers.md §4.2, Vertex's model page).
IMAGEN_PIXELS = {
    "1:1": (1024, 1024),
    "9:16": (768, 1408),
    "16:9": (1408, 768),
    "3:4": (896, 1280),
    "4:3": (1280, 896),
}
BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"
)


@dataclass(frozen=True)
class ScriptedResponse:
    """One canned answer, used instead of normal behaviour for the next matching request."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drops_connection: bool = False
    # For a create: create the job, then answer late or not at all.
    then_handle: bool = False

    @classmethod
    def json(
        cls,
        status: int,
        payload: object,
        *,
        content_type: str = "application/json",
        retry_after: float | None = None,
    ) -> ScriptedResponse:
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return cls(status, json.dumps(payload).encode(), content_type, headers)

    @classmethod
    def html(cls, status: int = 502) -> ScriptedResponse:
        return cls(status, BAD_GATEWAY_PAGE.encode(), "text/html")

    @classmethod
    def slow(cls, seconds: float) -> ScriptedResponse:
        return cls(delay=seconds, then_handle=True)

    @classmethod
    def disconnect(cls) -> ScriptedResponse:
        """The connection drops before any answer (for a create: after creating it)."""
        return cls(drops_connection=True, then_handle=True)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def canned(scripted: ScriptedResponse, request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(scripted.delay)
    if scripted.drops_connection:
        return drop(request)
    response = web.Response(status=scripted.status, body=scripted.body, headers=scripted.headers)
    response.content_type = scripted.content_type
    return response


def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering, as a crashed proxy does."""
    assert request.transport is not None
    request.transport.close()
    return web.Response(status=500)


def render_image(prompt: str, aspect_ratio: str, *, png: bool) -> tuple[bytes, str]:
    """A real image at Imagen's size for the ratio, its colour derived from the prompt."""
    width, height = IMAGEN_PIXELS[aspect_ratio]
    digest = hashlib.sha256(prompt.encode()).digest()
    picture = PillowImage.new("RGB", (width, height), tuple(digest[:3]))
    buffer = io.BytesIO()
    if png:
        picture.save(buffer, format="PNG")
        return buffer.getvalue(), "image/png"
    picture.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), "image/jpeg"


class FakeServer:
    """A fake provider's plumbing: an aiohttp app on 127.0.0.1 at a free port, every request
    it received, and the posts it sends on its own (webhooks, callbacks) with its own client
    session. Subclasses add their routes in ``routes``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app)
        # A test that ends while a scripted slow answer is still sleeping does not wait for it:
        # at close, handlers still running are cancelled at once (aiohttp waits 60 s).
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.05)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the fake is not started"
        return self._session

    def requests_to(self, method: str, path_part: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and path_part in r.path]

    async def record(self, request: web.Request) -> bytes:
        body = await request.read()
        self.requests.append(
            RecordedRequest(request.method, request.path_qs, dict(request.headers), body)
        )
        return body

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run a post the fake sends by itself; ``close`` cancels what is still running."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class Receiver(FakeServer):
    """A loopback endpoint standing in for the bot's listener: it records what a fake posts
    to it (webhooks, callbacks) and answers with scripted statuses, then 200."""

    def __init__(self, statuses: Sequence[int] = ()) -> None:
        super().__init__()
        self.statuses = list(statuses)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self._hook)

    @property
    def url(self) -> str:
        return self.origin + "/hook"

    @property
    def received(self) -> list[tuple[dict[str, str], bytes]]:
        return [(posted.headers, posted.body) for posted in self.requests]

    async def _hook(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


class InternalService(FakeServer):
    """Another service on the operator's machine that a hostile provider answer might name:
    it answers every GET with ``body`` and records it, so a test can prove nobody asked."""

    def __init__(
        self, body: bytes = b'{"secret": "internal"}', content_type: str = "application/json"
    ) -> None:
        super().__init__()
        self.body = body
        self.content_type = content_type

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{path:.*}", self._any)

    def url(self, path: str = "latest/meta-data") -> str:
        return f"{self.origin}/{path}"

    async def _any(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.Response(body=self.body, content_type=self.content_type)
