from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image as PillowImage

from bot.core.errors import DeliveryFailed
from bot.core.fitting import Fitted, ImageTooLarge, fit_to_limit, fitted

MiB = 2**20


def noise_png(path: Path, side: int, *, alpha: int | None = 255, rgba: bool = False) -> Path:
    """Random pixels, which no encoder can shrink much: a 512x512 PNG is about 790 KB, its
    JPEG at quality 90 about 215 KB. ``alpha`` None makes a see-through gradient."""
    picture = PillowImage.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    if rgba:
        if alpha is None:
            picture.putalpha(PillowImage.linear_gradient("L").resize((side, side)))
        else:
            picture.putalpha(alpha)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, "PNG", compress_level=1)  # noise does not compress: save it quickly
    return path


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_file_within_the_limit_is_returned_unchanged_without_being_decoded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "job-1-1.png"
    path.write_bytes(b"not even an image" * 100)  # decoding it would fail

    assert fit_to_limit(path, 1700) == Fitted(path, 1700, None)
    assert files_in(tmp_path) == ["job-1-1.png"]


def test_an_oversized_png_becomes_a_jpeg_of_the_same_size_when_quality_alone_suffices(
    tmp_path: Path,
) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 1024)
    before = original.read_bytes()
    assert len(before) > MiB

    result = fit_to_limit(original, MiB)

    assert result.path == tmp_path / "job-1-1.fit.jpg"
    assert result.size == result.path.stat().st_size <= MiB
    assert result.note == (
        "Re-encoded as JPEG (quality 90) to fit Discord's 1 MB upload limit; the original is kept."
    )
    with PillowImage.open(result.path) as copy:
        copy.load()
        assert (copy.format, copy.mode, copy.size) == ("JPEG", "RGB", (1024, 1024))
    assert original.read_bytes() == before
    assert files_in(tmp_path) == ["job-1-1.fit.jpg", "job-1-1.png"]  # no temporary left


def test_the_limit_is_named_in_mb_as_discord_shows_it(tmp_path: Path) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 512)

    result = fit_to_limit(original, MiB // 2)

    assert result.note is not None
    assert "fit Discord's 512 KB upload limit" in result.note


def test_when_quality_is_not_enough_the_image_is_scaled_down_and_the_note_says_so(
    tmp_path: Path,
) -> None:
    # 512x512 noise: about 96 KB at quality 50, 60 KB at 384x384, 28 KB at 288x288.
    original = noise_png(tmp_path / "job-1-1.png", 512)

    result = fit_to_limit(original, 40_000)

    assert result.size <= 40_000
    assert result.note == (
        "Re-encoded as JPEG (quality 70) and scaled to 288\N{MULTIPLICATION SIGN}288 to fit "
        "Discord's 39 KB upload limit; the original is kept."
    )
    with PillowImage.open(result.path) as copy:
        assert copy.size == (288, 288)


def test_an_image_with_transparency_becomes_a_webp_that_keeps_its_alpha(
    tmp_path: Path,
) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 384, rgba=True, alpha=None)

    result = fit_to_limit(original, original.stat().st_size // 2)

    assert result.path == tmp_path / "job-1-1.fit.webp"
    assert result.note is not None
    assert result.note.startswith("Re-encoded as WebP (quality 90) to fit")
    with PillowImage.open(result.path) as copy:
        copy.load()
        assert (copy.format, copy.mode, copy.size) == ("WEBP", "RGBA", (384, 384))
        low, high = copy.getchannel("A").getextrema()
        assert (low, high) == pytest.approx((0, 255), abs=4)


def test_an_alpha_channel_that_is_opaque_everywhere_still_becomes_a_jpeg(
    tmp_path: Path,
) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 512, rgba=True)

    result = fit_to_limit(original, MiB // 2)

    assert result.path == tmp_path / "job-1-1.fit.jpg"


def test_a_second_call_reuses_the_fitted_copy_without_encoding_again(tmp_path: Path) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 512)
    first = fit_to_limit(original, 150_000)
    written = first.path.stat()

    again = fit_to_limit(original, 150_000)

    assert again == first  # the same path, size and note
    assert (again.path.stat().st_mtime_ns, again.path.stat().st_ino) == (
        written.st_mtime_ns,
        written.st_ino,
    )


def test_a_fitted_copy_over_a_smaller_limit_is_made_again(tmp_path: Path) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 512)
    fit_to_limit(original, MiB // 2)

    smaller = fit_to_limit(original, 150_000)

    assert smaller.path == tmp_path / "job-1-1.fit.jpg"
    assert smaller.size == smaller.path.stat().st_size <= 150_000
    assert files_in(tmp_path) == ["job-1-1.fit.jpg", "job-1-1.png"]


def test_a_limit_no_re_encoding_reaches_raises_with_a_message_for_the_member(
    tmp_path: Path,
) -> None:
    original = noise_png(tmp_path / "job-1-1.png", 512)

    with pytest.raises(ImageTooLarge) as raised:
        fit_to_limit(original, 10_000)

    assert isinstance(raised.value, DeliveryFailed)
    assert raised.value.user_message == (
        "This image is too large to upload here even after re-encoding it."
    )
    assert files_in(tmp_path) == ["job-1-1.png"]


async def test_the_async_wrapper_gives_the_same_result(tmp_path: Path) -> None:
    original = noise_png(tmp_path / "a" / "job-1-1.png", 512)
    twin = tmp_path / "b" / "job-1-1.png"
    twin.parent.mkdir()
    shutil.copyfile(original, twin)

    result = await fitted(original, MiB // 2)

    expected = fit_to_limit(twin, MiB // 2)
    assert (result.path.name, result.size, result.note) == (
        expected.path.name,
        expected.size,
        expected.note,
    )
    assert result.path.parent == original.parent


def test_a_files_share_of_the_limit_is_fitted_but_the_note_names_the_whole_limit(
    tmp_path: Path,
) -> None:
    path = noise_png(tmp_path / "job-1-1.png", 512)
    share = path.stat().st_size // 3

    result = fit_to_limit(path, share, upload_limit=10 * 2**20)

    assert result.size <= share
    assert result.note is not None
    assert "10 MB upload limit" in result.note
