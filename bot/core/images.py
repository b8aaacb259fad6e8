"""Generated images on disk: written before they are posted, so a failed post loses nothing."""

from __future__ import annotations

import asyncio
import io
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PillowImage

from bot.core.errors import NotAnImage

# Magic numbers of the formats Imagen providers return (PNG, JPEG, WebP).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"))
# What Pillow calls each of them, to check that the bytes decode as what they claim.
_PILLOW_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
# Imagen makes 768-2816 pixels a side (providers.md §4.2); anything far outside is no result.
MIN_SIDE_PIXELS = 64
MAX_SIDE_PIXELS = 8192


@dataclass(frozen=True, slots=True)
class Image:
    data: bytes
    extension: str


def sniff_extension(data: bytes, fallback: str = "bin") -> str:
    """The file extension the bytes really are, whatever the URL or request claimed."""
    for signature, extension in _SIGNATURES:
        if data.startswith(signature):
            return extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return fallback


def checked_image(data: bytes) -> Image:
    """The bytes as an Image if they really are one JPEG, PNG or WebP of sane dimensions that
    Pillow decodes to the end; NotAnImage otherwise (an HTML page, JSON, a truncated file)."""
    extension = sniff_extension(data)
    if extension not in _PILLOW_FORMATS:
        raise NotAnImage(detail=f"{len(data)} bytes that are not JPEG, PNG or WebP")
    try:
        with PillowImage.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            if picture.format != _PILLOW_FORMATS[extension]:
                raise NotAnImage(detail=f"{extension} signature but {picture.format} data")
            # Checked before decoding, so a decompression bomb is never expanded.
            if not all(MIN_SIDE_PIXELS <= side <= MAX_SIDE_PIXELS for side in picture.size):
                raise NotAnImage(detail=f"an image of {width}x{height} pixels")
            picture.load()  # decodes every pixel: a truncated file fails here
    except NotAnImage:
        raise
    except (OSError, ValueError, SyntaxError, PillowImage.DecompressionBombError) as exc:
        raise NotAnImage(detail=f"{extension} that does not decode: {exc}") from exc
    return Image(data, extension)


class ImageStore:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def save(self, stem: str, images: list[Image]) -> list[Path]:
        """Write each image durably as ``<stem>-<n>.<ext>`` and return the paths."""
        return await asyncio.to_thread(self._save_sync, stem, images)

    def _save_sync(self, stem: str, images: list[Image]) -> list[Path]:
        self._directory.mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for index, image in enumerate(images, start=1):
            path = self._directory / f"{stem}-{index}.{image.extension}"
            partial = path.with_suffix(path.suffix + ".part")
            with partial.open("wb") as handle:
                handle.write(image.data)
                handle.flush()
                os.fsync(handle.fileno())
            # rename is atomic: a crash leaves either no file or the whole image.
            partial.replace(path)
            paths.append(path)
        return paths

    @staticmethod
    async def read(path: Path) -> bytes:
        return await asyncio.to_thread(path.read_bytes)
