"""The HTTP helper every provider client shares: one session, typed errors, bounded bodies,
images streamed to disk."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import aiohttp
from yarl import URL

from bot.core.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    ResultUnavailable,
    UnsafeImageSource,
)
from bot.core.images import Image, ImageSpool
from bot.core.providers.image_sources import ImageSources, RefusedAddress

log = logging.getLogger(__name__)

# An Imagen 4 image is 1-3 MB at 2K; 50 MiB is far beyond any genuine result.
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
# What one read of a body takes at most, so an image never sits whole in memory.
CHUNK_BYTES = 64 * 1024
# Error bodies and JSON answers are small; an HTML error page can be large and is cut.
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
_DETAIL_CHARS = 300
# CDNs redirect to a signed URL at most once or twice; a longer chain is not an image.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (an HTML error page, say)."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # deep nesting exhausts the parser's stack
            return None

    @property
    def ok(self) -> bool:
        return _succeeded(self.status)

    def detail(self) -> str:
        """A short, log-safe description of an error body (problem+json or anything else)."""
        payload = self.json()
        if isinstance(payload, dict):
            for key in ("detail", "title", "message", "msg", "error"):
                value = payload.get(key)
                if isinstance(value, str) and value:
                    return value[:_DETAIL_CHARS]
        text = self.body.decode("utf-8", errors="replace").strip()
        if text.lstrip().startswith("<"):
            return f"HTTP {self.status} with an HTML page"
        return text[:_DETAIL_CHARS] or f"HTTP {self.status}"

    def retry_after(self) -> float | None:
        """Seconds from a Retry-After header (integer or HTTP date), if any."""
        value = self.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _succeeded(status: int) -> bool:
    return 200 <= status < 300


def error_for(response: HttpResponse) -> ProviderError:
    """Map an unsuccessful response to the error vocabulary (providers.md §1.7)."""
    detail = response.detail()
    if response.status in (401, 403):
        return ProviderAuthError(detail=detail)
    if response.status == 429:
        return ProviderRateLimited(response.retry_after(), detail=detail)
    if response.status == 404:
        return ProviderMisconfigured(detail=detail)
    if 400 <= response.status < 500:
        return ProviderRejected(detail=detail)
    return ProviderUnavailable(detail=detail)


class HttpClient:
    """Sends requests and turns transport failures into ProviderError subclasses.

    ``session`` talks to the providers' configured endpoints; ``public_session`` (see
    image_sources.public_only_session) fetches images from hosts nobody configured, and only
    connects to public addresses. Without it such images are refused.

    Images are written to ``spool`` as they arrive, never held whole in memory. The bot passes
    its ImageStore's spool, so that saving an image is a rename; without one (check-config,
    tests) they are spooled in the system's temporary directory.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        public_session: aiohttp.ClientSession | None = None,
        spool: ImageSpool | None = None,
    ) -> None:
        self._session = session
        self._public_session = public_session
        self._spool = spool or ImageSpool(Path(tempfile.gettempdir()))

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        timeout: float,
    ) -> HttpResponse:
        async with self._exchange(
            method, url, headers=headers, json_body=json_body, timeout=timeout
        ) as response:
            return await _answer(response)

    async def download_image(
        self,
        url: str,
        *,
        sources: ImageSources,
        headers: Mapping[str, str] | None = None,
        timeout: float,
    ) -> Image:
        """One finished image from a URL or an inline ``data:`` URI, checked to really be one.

        The body goes to a spool file chunk by chunk, within MAX_DOWNLOAD_BYTES, and is checked
        from there once the connection is released; the file is gone if anything fails.
        """
        with self._spool.new_file() as spooled:
            if url.startswith("data:"):
                # Inline data came in an answer already capped at MAX_RESPONSE_BYTES.
                spooled.write(_data_uri_bytes(url))
            else:
                async with self._image_response(
                    url, sources=sources, headers=headers, timeout=timeout
                ) as response:
                    async for chunk in _capped_chunks(response, MAX_DOWNLOAD_BYTES):
                        spooled.write(chunk)
            return await spooled.checked()

    async def download_images(
        self,
        urls: Sequence[str],
        *,
        sources: ImageSources,
        timeout: float,
        headers_for: Callable[[str], Mapping[str, str] | None] = lambda _url: None,
    ) -> list[Image]:
        """Every image of a job, or none: when one fails (or the download is cancelled) those
        already spooled are removed. ``headers_for`` gives a URL's credentials; by default
        there are none (CDNs, data: URIs)."""
        images: list[Image] = []
        try:
            for url in urls:
                images.append(
                    await self.download_image(
                        url, sources=sources, headers=headers_for(url), timeout=timeout
                    )
                )
        except BaseException:
            for image in images:
                image.discard()
            raise
        return images

    @contextlib.asynccontextmanager
    async def _image_response(
        self,
        url: str,
        *,
        sources: ImageSources,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The image file's successful response, open while the block reads its body.

        Redirects are followed by hand so that every hop passes the same source check, and
        ``headers`` (credentials) go only to the first URL's origin: scheme, host and port
        alike, so a redirect to plain http or to another port of the host gets none. Only a
        host whose every address may be private (see ImageSources.trusts_address) is fetched
        through the ordinary session. 403/404/410 mean the provider already deleted the file
        (an hour on Replicate, about a day on Apikley: providers.md §0.4, §3.5), which no
        retry can change.
        """
        current = _image_url(url)
        first_origin = _origin(current)
        for _ in range(MAX_REDIRECTS + 1):
            refusal = sources.refusal(current)
            if refusal is not None:
                log.warning("refused to fetch an image from %r: %s", str(current), refusal)
                raise UnsafeImageSource(detail=f"{current}: {refusal}")
            any_address = sources.trusts_address(current)
            if not any_address and self._public_session is None:
                raise UnsafeImageSource(detail=f"{current}: public hosts are not set up")
            async with self._exchange(
                "GET",
                str(current),
                headers=headers if _origin(current) == first_origin else None,
                timeout=timeout,
                session=None if any_address else self._public_session,
            ) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECTS and location:
                    current = _image_url(location, base=current)
                    continue
                if response.status in (403, 404, 410):
                    raise ResultUnavailable(detail=f"output file answered HTTP {response.status}")
                if not _succeeded(response.status):  # aiohttp's own ``ok`` takes in 3xx
                    raise error_for(await _answer(response))
                yield response
                return
        raise ResultUnavailable(detail=f"more than {MAX_REDIRECTS} redirects from {url}")

    @contextlib.asynccontextmanager
    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None,
        json_body: Any = None,
        timeout: float,
        session: aiohttp.ClientSession | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One response, open while the block reads it. Transport failures, while sending or
        while the block reads the body, become ProviderError subclasses."""
        try:
            async with (session or self._session).request(
                method,
                url,
                headers=headers,
                json=json_body,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                yield response
        except TimeoutError as exc:
            raise ProviderTimeout(detail=f"{method} {url} timed out after {timeout}s") from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, RefusedAddress):
                raise UnsafeImageSource(detail=f"{url}: {exc.os_error}") from exc
            # The TCP connection never opened: the provider cannot have seen the request.
            raise ProviderUnavailable(
                detail=f"cannot connect to {url}: {exc.os_error}", request_was_sent=False
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailable(detail=f"{method} {url} failed: {exc!r}") from exc


def _image_url(text: str, *, base: URL | None = None) -> URL:
    """An image URL from a provider answer or a redirect; one that yarl cannot parse (a
    backslash in the authority, a port out of range) is an unsafe source, not a crash."""
    try:
        url = URL(text)
        return url if base is None else base.join(url)
    except ValueError as exc:
        log.warning("refused to fetch an image from %r: not a valid URL", text)
        raise UnsafeImageSource(detail=f"{text!r} is not a valid URL: {exc}") from exc


def _origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port, the port spelled out when the URL leaves it implied."""
    return url.scheme, (url.host or "").lower(), url.port


async def _answer(response: aiohttp.ClientResponse) -> HttpResponse:
    """A small answer (JSON, an error page) read whole, within MAX_RESPONSE_BYTES."""
    body = b"".join([chunk async for chunk in _capped_chunks(response, MAX_RESPONSE_BYTES)])
    return HttpResponse(response.status, response.headers, body)


async def _capped_chunks(response: aiohttp.ClientResponse, max_bytes: int) -> AsyncIterator[bytes]:
    """The body in chunks of at most CHUNK_BYTES, refused as soon as it passes ``max_bytes``
    or its Content-Length says it will."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise ProviderUnavailable(detail=f"response of {response.content_length} bytes")
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise ProviderUnavailable(detail=f"response larger than {max_bytes} bytes")
        yield chunk


def _data_uri_bytes(uri: str) -> bytes:
    header, _, data = uri.partition(",")
    try:
        return (
            base64.b64decode(data, validate=True)
            if header.endswith(";base64")
            else unquote_to_bytes(data)
        )
    except binascii.Error as exc:
        raise ResultUnavailable(detail="output data: URI is not valid base64") from exc
