from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.images import Image, ImageStore, sniff_extension


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n....", "png"),
        (b"\xff\xd8\xff\xdb....", "jpg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"<html>", "bin"),
    ],
)
def test_extension_comes_from_the_bytes(data: bytes, expected: str) -> None:
    assert sniff_extension(data) == expected


async def test_saved_images_are_complete_files_with_no_leftovers(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    paths = await store.save("job-7", [Image(b"one", "png"), Image(b"two", "jpg")])
    assert [p.name for p in paths] == ["job-7-1.png", "job-7-2.jpg"]
    assert [await store.read(p) for p in paths] == [b"one", b"two"]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["job-7-1.png", "job-7-2.jpg"]
