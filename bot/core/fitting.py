"""Make a stored image fit Discord's upload limit by re-encoding a copy of it.

Discord refuses a whole message, not just the file, when one of its files is over the
interaction's ``attachment_size_limit`` (HTTP 413, error code 40005). Imagen's PNGs at
2816x1536 can pass 10 MiB, the limit of an unboosted server, so an oversized result is
re-encoded, first at lower qualities, then smaller, until it fits. The stored original is
never changed: the copy sits beside it as ``<stem>.fit.jpg`` (or ``.webp``), written under a
temporary name and renamed into place, and a retried delivery reuses it instead of encoding
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, ImageOps
from PIL import Image as PillowImage

from bot.core.errors import DeliveryFailed

log = logging.getLogger(__name__)

# Tried in order at full size: most results fit at the first step or two, and every step down
# is visible, so the first quality that fits is kept.
QUALITIES = (90, 80, 70, 60, 50)
# When even the lowest quality is too big, halving the bytes costs less as fewer pixels at a
# middle quality than as all of them at a quality that shows blocks and smears.
SCALED_QUALITY = 70
# Each scaled attempt is 3/4 of the original's sides (9/16 of its pixels), resized from the
# decoded original each time so that Lanczos filtering never compounds.
SCALE_STEP = 0.75
# Below this a result no longer shows what was asked for: the member is better told.
MIN_SIDE_PIXELS = 256
# The copy records its quality, so that a reused copy's note says what the first one said.
_DESCRIPTION = "Re-encoded by imagine-bot at quality {quality}"
_QUALITY_IN_DESCRIPTION = re.compile(r"at quality (\d+)")
_FIT_EXTENSIONS = ("jpg", "webp")
_FORMATS = {"jpg": ("JPEG", "JPEG"), "webp": ("WEBP", "WebP")}  # Pillow's name, the note's


class ImageTooLarge(DeliveryFailed):
    """No re-encoding down to MIN_SIDE_PIXELS fits the upload limit; the original is kept."""

    user_message = "This image is too large to upload here even after re-encoding it."


@dataclass(frozen=True, slots=True)
class Fitted:
    """The file to upload for a stored image and, when it is a re-encoded copy, why."""

    path: Path  # the original when it already fits, else the re-encoded copy beside it
    size: int  # in bytes, from the file: what the upload limit is compared with
    note: str | None  # None when unchanged; else a sentence for the result's embed


def fit_to_limit(path: Path, limit: int, *, upload_limit: int | None = None) -> Fitted:
    """The image at ``path`` as a file of at most ``limit`` bytes; ImageTooLarge when even the
    smallest attempt is bigger. A file that fits is returned as it is, without being read.
    ``upload_limit`` is the limit the note names, when ``limit`` is this file's share of it
    (the files of one message must fit together).

    Blocking (decoding and each encode take tens to hundreds of milliseconds): run it in a
    worker thread, as :func:`fitted` does. A file Pillow cannot decode raises Pillow's own
    error: stored images were checked when they were downloaded (``checked_image``), so that
    is a broken disk, not a case to handle.
    """
    original = path.stat()
    if original.st_size <= limit:
        return Fitted(path, original.st_size, None)
    reused = _reusable_copy(path, original, limit, upload_limit or limit)
    if reused is not None:
        return reused
    picture, icc_profile = _decoded(path)
    extension = "webp" if picture.mode == "RGBA" else "jpg"
    pillow_format, format_name = _FORMATS[extension]
    for quality, dimensions in _attempts(picture.size):
        attempt = (
            picture
            if dimensions == picture.size
            else picture.resize(dimensions, PillowImage.Resampling.LANCZOS)
        )
        # Each attempt is encoded in memory: its size is known only once it is encoded, a
        # failed one must leave nothing on disk, and it is at most a few times the limit
        # (tens of MB), next to a decoded picture of at most 4096x4096 (67 MB, MAX_PIXELS).
        data = _encoded(attempt, pillow_format, quality, icc_profile)
        if len(data) <= limit:
            target = path.with_name(f"{path.stem}.fit.{extension}")
            _write_atomically(target, data)
            log.info(
                "%s: %d bytes over the %d-byte upload limit, re-encoded as %s (%d bytes)",
                path.name,
                original.st_size,
                limit,
                target.name,
                len(data),
            )
            scaled = dimensions if dimensions != picture.size else None
            note = _note(format_name, quality, scaled, upload_limit or limit)
            return Fitted(target, len(data), note)
    raise ImageTooLarge(
        detail=f"{path.name} ({original.st_size} bytes) does not fit {limit} bytes even as "
        f"{format_name} at quality {SCALED_QUALITY} with its shorter side near "
        f"{MIN_SIDE_PIXELS} pixels"
    )


async def fitted(path: Path, limit: int, *, upload_limit: int | None = None) -> Fitted:
    """:func:`fit_to_limit` in a worker thread, so decoding never blocks the event loop."""
    return await asyncio.to_thread(fit_to_limit, path, limit, upload_limit=upload_limit)


def _reusable_copy(
    path: Path, original: os.stat_result, limit: int, upload_limit: int
) -> Fitted | None:
    """A copy an earlier call made that still fits: a retried delivery must not pay for the
    encoding again. A copy older than the original was made from another file of that name."""
    for extension in _FIT_EXTENSIONS:
        copy = path.with_name(f"{path.stem}.fit.{extension}")
        try:
            status = copy.stat()
        except FileNotFoundError:
            continue
        if status.st_size > limit or status.st_mtime_ns < original.st_mtime_ns:
            continue
        # Headers only: neither file is decoded.
        with PillowImage.open(copy) as opened:
            dimensions = opened.size
            description = str(opened.getexif().get(ExifTags.Base.ImageDescription, ""))
        with PillowImage.open(path) as opened:
            # Compared as pixel counts: an EXIF rotation may have swapped the sides.
            scaled = dimensions[0] * dimensions[1] < opened.size[0] * opened.size[1]
        match = _QUALITY_IN_DESCRIPTION.search(description)
        quality = int(match.group(1)) if match else None
        format_name = _FORMATS[extension][1]
        note = _note(format_name, quality, dimensions if scaled else None, upload_limit)
        return Fitted(copy, status.st_size, note)
    return None


def _decoded(path: Path) -> tuple[PillowImage.Image, bytes | None]:
    """The picture decoded once, upright, as RGBA when some pixel is see-through (WebP keeps
    alpha) and RGB otherwise (JPEG has none), with its colour profile."""
    with PillowImage.open(path) as opened:
        opened.load()
        icc_profile = opened.info.get("icc_profile")
        # The copy carries no EXIF orientation of its own, so the rotation is applied.
        ImageOps.exif_transpose(opened, in_place=True)
        if opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info:
            rgba = opened if opened.mode == "RGBA" else opened.convert("RGBA")
            # An alpha channel that is opaque everywhere (common in PNGs) needs no WebP.
            if any(rgba.getchannel("A").histogram()[:255]):
                return rgba, icc_profile
            return rgba.convert("RGB"), icc_profile
        picture = opened if opened.mode == "RGB" else opened.convert("RGB")
    return picture, icc_profile


def _attempts(size: tuple[int, int]) -> Iterator[tuple[int, tuple[int, int]]]:
    """(quality, dimensions) pairs, from the best-looking to the smallest."""
    width, height = size
    for quality in QUALITIES:
        yield quality, size
    scale = SCALE_STEP
    while min(width, height) * scale >= MIN_SIDE_PIXELS:
        yield SCALED_QUALITY, (round(width * scale), round(height * scale))
        scale *= SCALE_STEP


def _encoded(
    picture: PillowImage.Image, pillow_format: str, quality: int, icc_profile: bytes | None
) -> bytes:
    exif = PillowImage.Exif()
    exif[ExifTags.Base.ImageDescription] = _DESCRIPTION.format(quality=quality)
    buffer = io.BytesIO()
    # Optimized Huffman tables and a progressive scan take a few percent off a JPEG for
    # about three times the (still sub-second) encoding time; WebP keeps its default effort.
    options = {"optimize": True, "progressive": True} if pillow_format == "JPEG" else {}
    picture.save(
        buffer, pillow_format, quality=quality, exif=exif, icc_profile=icc_profile, **options
    )
    return buffer.getvalue()


def _write_atomically(target: Path, data: bytes) -> None:
    """Write under a temporary name in the same directory, then rename: a crash leaves
    either no copy or a whole one, never a truncated file under the name uploads use. The
    file gets the umask's permissions, like the stored images (images.py)."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _note(format_name: str, quality: int | None, scaled: tuple[int, int] | None, limit: int) -> str:
    encoding = f"{format_name} (quality {quality})" if quality is not None else format_name
    scaling = f" and scaled to {scaled[0]}\N{MULTIPLICATION SIGN}{scaled[1]}" if scaled else ""
    return (
        f"Re-encoded as {encoding}{scaling} to fit Discord's {_megabytes(limit)} upload "
        "limit; the original is kept."
    )


def _megabytes(limit: int) -> str:
    """The limit as Discord shows it: in MiB, called MB, without a trailing ``.0``."""
    mebibytes = limit / 2**20
    if mebibytes >= 1:
        return f"{mebibytes:.1f}".removesuffix(".0") + " MB"
    return f"{limit / 2**10:.0f} KB"
