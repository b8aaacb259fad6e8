"""Generated images on disk: written before they are posted, so a failed post loses nothing.

An image never sits whole in memory. A download is written to a spool file as it arrives
(:class:`ImageSpool`), checked from that file (:func:`checked_image`), and moved into place by
:meth:`ImageStore.save` with a rename; posting streams the stored file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image as PillowImage

from bot.core.errors import NotAnImage

# Magic numbers of the formats Imagen providers return (PNG, JPEG, WebP).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"))
# Enough of a file's head to tell the three formats apart (WebP's is the longest).
_SIGNATURE_BYTES = 12
# What Pillow calls each of them, to check that the bytes decode as what they claim.
_PILLOW_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
# Imagen makes 768-2816 pixels a side (providers.md §4.2); anything far outside is no result.
MIN_SIDE_PIXELS = 64
MAX_SIDE_PIXELS = 8192
# PNG and WebP decode at full size, 4 bytes a pixel at worst, whatever the file's size: a
# few KiB of PNG at 8192x8192 would take 268 MB. Imagen's largest output, 2816x1536 (4.3 MP),
# fits nearly four times in 4096x4096 (16.8 MP, at most 67 MB decoded).
MAX_PIXELS = 4096 * 4096
# A spool file no write has touched for this long belongs to no live download: downloads
# time out within minutes (providers' request timeouts).
STALE_SECONDS = 3600.0
# The spool's place inside the store's directory: the same filesystem, so saving is a rename.
_SPOOL_DIRECTORY = ".spool"
_SPOOL_SUFFIX = ".part"


@dataclass(frozen=True, slots=True)
class Image:
    """A checked image waiting in the spool for :meth:`ImageStore.save` to move it into place."""

    path: Path
    extension: str

    def discard(self) -> None:
        """Remove the spooled file of an image that will not be saved."""
        self.path.unlink(missing_ok=True)


def sniff_extension(data: bytes, fallback: str = "bin") -> str:
    """The file extension the bytes really are, whatever the URL or request claimed."""
    for signature, extension in _SIGNATURES:
        if data.startswith(signature):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return fallback


def checked_image(path: Path) -> Image:
    """The file as an Image if it really is one JPEG, PNG or WebP of sane dimensions that
    Pillow decodes to the end; NotAnImage otherwise (an HTML page, JSON, a truncated file).

    It reads the file through Pillow in Pillow's own blocks (64 KiB), never whole into a bytes
    object, except WebP, whose Pillow decoder takes the whole file (no provider the bot uses
    sends WebP). A JPEG is decoded in draft mode, at 1/8 scale: libjpeg still reads and
    entropy-decodes every scan to the end, so a truncated or corrupt stream is refused exactly
    as a full decode refuses it (tests/core/test_images.py cuts JPEGs at many points), but the
    pixel buffer is 1/64 of the full size. PNG and WebP have no such mode and are decoded at
    full size. Blocking: run it in a worker thread.
    """
    with path.open("rb") as handle:
        extension = sniff_extension(handle.read(_SIGNATURE_BYTES))
        if extension not in _PILLOW_FORMATS:
            size = os.fstat(handle.fileno()).st_size
            raise NotAnImage(detail=f"{size} bytes that are not JPEG, PNG or WebP")
        handle.seek(0)
        try:
            with PillowImage.open(handle) as picture:
                width, height = picture.size
                if picture.format != _PILLOW_FORMATS[extension]:
                    raise NotAnImage(detail=f"{extension} signature but {picture.format} data")
                # Checked before decoding, so a decompression bomb is never expanded.
                if (
                    not all(MIN_SIDE_PIXELS <= side <= MAX_SIDE_PIXELS for side in picture.size)
                    or width * height > MAX_PIXELS
                ):
                    raise NotAnImage(detail=f"an image of {width}x{height} pixels")
                if extension == "jpg":
                    picture.draft(picture.mode, (width // 8, height // 8))
                picture.load()  # decodes every pixel: a truncated file fails here
        except NotAnImage:
            raise
        except (OSError, ValueError, SyntaxError, PillowImage.DecompressionBombError) as exc:
            raise NotAnImage(detail=f"{extension} that does not decode: {exc}") from exc
    return Image(path, extension)


class SpoolFile:
    """One image being written into the spool, then checked."""

    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self.path = path
        self._handle = handle

    def write(self, chunk: bytes) -> None:
        """Append a chunk. Written from the event loop: a write of one download chunk lands
        in the page cache in microseconds, less than a hop to a worker thread would cost."""
        self._handle.write(chunk)

    async def checked(self) -> Image:
        """Close the file and check it (:func:`checked_image`) in a worker thread."""
        self._handle.close()
        return await asyncio.to_thread(checked_image, self.path)


class ImageSpool:
    """Where downloads are written as they arrive, before they are checked and saved."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @contextlib.contextmanager
    def new_file(self) -> Iterator[SpoolFile]:
        """A new spool file of a unique name, removed when the block does not end normally:
        a failed, refused or cancelled download leaves nothing behind. The file is created
        with the umask's permissions (not mkstemp's 0600), as the stored images always were.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{uuid.uuid4().hex}{_SPOOL_SUFFIX}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with open(descriptor, "wb") as handle:
                yield SpoolFile(path, handle)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def clear(self, *, now: float) -> None:
        """Remove what a killed process left half-written: files untouched for STALE_SECONDS.
        A fresh one may be a download of another process sharing the directory (``generate``
        into the image directory, a second bot), still being written."""
        for leftover in self.directory.glob(f"*{_SPOOL_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                if now - leftover.stat().st_mtime > STALE_SECONDS:
                    leftover.unlink(missing_ok=True)


class ImageStore:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        # Inside the store's directory, so that save moves a download with a rename.
        self.spool = ImageSpool(directory / _SPOOL_DIRECTORY)

    async def save(self, stem: str, images: list[Image]) -> list[Path]:
        """Move each spooled image into place as ``<stem>-<n>.<ext>`` and return the paths."""
        return await asyncio.to_thread(self._save_sync, stem, images)

    def _save_sync(self, stem: str, images: list[Image]) -> list[Path]:
        self._directory.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for index, image in enumerate(images, start=1):
            path = self._directory / f"{stem}-{index}.{image.extension}"
            # A rename is atomic: a crash leaves either no file or the whole image. There is
            # no fsync: the database runs synchronous = NORMAL, durable against a process
            # crash (what the restart guarantees cover) but not a power loss, and an image
            # needs to be no more durable than the row that names it.
            os.replace(image.path, path)
            paths.append(path)
        return paths

    async def size(self, path: Path) -> int:
        """A stored image's size in bytes, from its metadata: posting streams the file itself,
        so nothing is read here."""
        return (await asyncio.to_thread(path.stat)).st_size
