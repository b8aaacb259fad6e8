from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image as PillowImage

from bot.core.errors import NotAnImage
from bot.core.images import Image, ImageStore, checked_image, sniff_extension


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


def encoded(fmt: str, size: tuple[int, int] = (1024, 1024)) -> bytes:
    buffer = io.BytesIO()
    PillowImage.new("RGB", size, (10, 120, 200)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "extension"), [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")])
def test_whole_images_of_the_three_formats_are_accepted(fmt: str, extension: str) -> None:
    data = encoded(fmt)

    assert checked_image(data) == Image(data, extension)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'{"detail": "not found"}',
        b"",
        encoded("PNG")[:2000],  # truncated mid-way
        encoded("JPEG")[:3000],
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # a signature and nothing behind it
        encoded("GIF"),
        encoded("PNG", (8, 8)),  # no Imagen result is this small
        encoded("PNG", (9000, 64)),
    ],
    ids=["html", "json", "empty", "png-cut", "jpeg-cut", "bare-signature", "gif", "tiny", "huge"],
)
def test_anything_but_a_whole_image_of_sane_size_is_refused(body: bytes) -> None:
    with pytest.raises(NotAnImage):
        checked_image(body)
