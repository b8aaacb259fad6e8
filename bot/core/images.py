"""Generated images on disk: written before they are posted, so a failed post loses nothing."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

# Magic numbers of the formats Imagen providers return (PNG, JPEG, WebP).
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpg"))


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
