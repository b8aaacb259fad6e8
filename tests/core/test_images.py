from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image as PillowImage

from bot.core.errors import NotAnImage
from bot.core.images import (
    STALE_SECONDS,
    Image,
    ImageSpool,
    ImageStore,
    checked_image,
    sniff_extension,
)
from tests.factories import spooled


def written(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "download"
    path.write_bytes(data)
    return path


def left_in(spool: ImageSpool) -> list[str]:
    return sorted(p.name for p in spool.directory.iterdir()) if spool.directory.exists() else []


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
    images = [spooled(store, b"one", "png"), spooled(store, b"two", "jpg")]

    paths = await store.save("job-7", images)

    assert [p.name for p in paths] == ["job-7-1.png", "job-7-2.jpg"]
    assert [p.read_bytes() for p in paths] == [b"one", b"two"]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        ".spool",
        "job-7-1.png",
        "job-7-2.jpg",
    ]
    assert left_in(store.spool) == []


async def test_saving_moves_the_spooled_file_without_copying_it(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    image = spooled(store, b"x" * 100_000, "jpg")
    inode = image.path.stat().st_ino

    [path] = await store.save("job-1", [image])

    assert path.stat().st_ino == inode
    assert not image.path.exists()


async def test_a_stored_images_size_comes_from_the_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    [path] = await store.save("job-1", [spooled(store, b"x" * 1234, "png")])

    assert await store.size(path) == 1234


def test_a_spool_file_whose_writing_fails_is_removed(tmp_path: Path) -> None:
    spool = ImageSpool(tmp_path / "spool")

    def receive_half() -> None:
        with spool.new_file() as file:
            file.write(b"half an image")
            raise ConnectionResetError("the connection dropped")

    with pytest.raises(ConnectionResetError):
        receive_half()

    assert left_in(spool) == []


def test_clearing_the_spool_removes_what_a_killed_process_left(tmp_path: Path) -> None:
    spool = ImageSpool(tmp_path / "spool")
    with spool.new_file() as file:
        file.write(b"half an image")

    spool.clear(now=time.time() + STALE_SECONDS + 1)

    assert left_in(spool) == []


def test_clearing_the_spool_keeps_a_download_another_process_is_writing(tmp_path: Path) -> None:
    spool = ImageSpool(tmp_path / "spool")
    with spool.new_file() as file:
        file.write(b"half an image, still arriving")

    spool.clear(now=time.time())

    assert left_in(spool) == [file.path.name]


def encoded(fmt: str, size: tuple[int, int] = (1024, 1024), **options: object) -> bytes:
    buffer = io.BytesIO()
    PillowImage.new("RGB", size, (10, 120, 200)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def noisy_jpeg(*, progressive: bool) -> bytes:
    """Noise, so that every cut below lands inside real entropy-coded data."""
    buffer = io.BytesIO()
    picture = PillowImage.effect_noise((1408, 768), 64).convert("RGB")
    picture.save(buffer, format="JPEG", quality=90, progressive=progressive)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "extension"), [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp")])
def test_whole_images_of_the_three_formats_are_accepted(
    tmp_path: Path, fmt: str, extension: str
) -> None:
    path = written(tmp_path, encoded(fmt))

    assert checked_image(path) == Image(path, extension)


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
def test_anything_but_a_whole_image_of_sane_size_is_refused(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(NotAnImage):
        checked_image(written(tmp_path, body))


@pytest.mark.parametrize("size", [(4097, 4096), (4100, 4100), (8192, 2049)])
def test_an_image_of_more_pixels_than_4096_by_4096_is_refused_undecoded(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """A few KiB of PNG can claim any size, and PNG decodes at full size."""
    with pytest.raises(NotAnImage, match="pixels"):
        checked_image(written(tmp_path, encoded("PNG", size)))


@pytest.mark.parametrize("size", [(2816, 1536), (4096, 4096), (8192, 2048), (64, 64)])
def test_images_up_to_4096_by_4096_pixels_are_accepted(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    path = written(tmp_path, encoded("PNG", size))

    assert checked_image(path) == Image(path, "png")


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("kept", [0.1, 0.5, 0.9, 0.999])
def test_a_jpeg_cut_anywhere_is_refused_although_it_is_decoded_in_draft_mode(
    tmp_path: Path, progressive: bool, kept: float
) -> None:
    data = noisy_jpeg(progressive=progressive)
    checked_image(written(tmp_path, data))

    with pytest.raises(NotAnImage):
        checked_image(written(tmp_path, data[: int(len(data) * kept)]))


@pytest.mark.parametrize("missing", [1, 2])
def test_a_jpeg_missing_only_its_end_marker_is_refused(tmp_path: Path, missing: int) -> None:
    data = noisy_jpeg(progressive=False)

    with pytest.raises(NotAnImage):
        checked_image(written(tmp_path, data[:-missing]))
