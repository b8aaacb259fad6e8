"""The prompt library's own image files: a kept copy of each shared image and its thumbnail.

An entry never points at a job's stored image or a Discord attachment: the job's file may be
pruned by retention and a CDN link expires, so sharing keeps a copy of its own (a hard link
where the filesystem allows, which costs no space and survives the original being removed),
and a thumbnail made once, at share time, for the web gallery's grid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PillowImage

from bot.core.errors import InvalidRequest

# The longest side of a thumbnail: a grid cell is about 250 CSS pixels wide, twice that on a
# high-density screen.
THUMBNAIL_SIDE = 512
THUMBNAIL_QUALITY = 80
_THUMBNAIL_SUFFIX = "-thumb.jpg"


@dataclass(frozen=True, slots=True)
class KeptImage:
    image_name: str
    thumbnail_name: str
    width: int
    height: int


class LibraryFiles:
    """The files of the library's entries, in one directory (``<images dir>/library``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        """The file of a stored name; the names are the bot's own (a uuid and a suffix), so
        one that tries to leave the directory is a bug, not input."""
        if not name or Path(name).name != name or name.startswith("."):
            raise ValueError(f"not a library file name: {name!r}")
        return self.directory / name

    async def keep(self, source: Path) -> KeptImage:
        """Keep a copy of a job's image and make its thumbnail; InvalidRequest when the job's
        image is gone from disk."""
        return await asyncio.to_thread(self._keep, source)

    def _keep(self, source: Path) -> KeptImage:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = uuid.uuid4().hex
        image_name = f"{stem}{source.suffix.lower()}"
        thumbnail_name = f"{stem}{_THUMBNAIL_SUFFIX}"
        image_path = self.directory / image_name
        try:
            os.link(source, image_path)
        except FileNotFoundError as exc:
            raise InvalidRequest(
                "That image is no longer kept on the bot's disk, so it cannot be shared."
            ) from exc
        except OSError:  # another filesystem, or one without hard links
            shutil.copyfile(source, image_path)
        try:
            with PillowImage.open(image_path) as picture:
                width, height = picture.size
                picture.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
                picture.convert("RGB").save(
                    self.directory / thumbnail_name,
                    "JPEG",
                    quality=THUMBNAIL_QUALITY,
                    optimize=True,
                )
        except BaseException:
            self._remove(image_name, thumbnail_name)
            raise
        return KeptImage(image_name, thumbnail_name, width, height)

    async def remove(self, *names: str) -> None:
        """Delete files of entries that are gone (missing ones are fine: already deleted)."""
        await asyncio.to_thread(self._remove, *names)

    def _remove(self, *names: str) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()
