"""The fake AIML API keeps the promises of providers.md §2 and §6 that the bot relies on."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from PIL import Image as PillowImage

from tests.fakes.fake_aiml import (
    ENHANCEMENT,
    MODELS,
    OUT_OF_CREDITS,
    UNAUTHORIZED,
    USAGE_PER_IMAGE,
    FakeAiml,
    generation_timeout,
    out_of_credits,
    throttled,
)
from tests.fakes.loopback import ScriptedResponse

BODY: dict[str, Any] = {"model": MODELS["fast"], "prompt": "a red fox in the snow"}
ERROR_FIELDS = {"message", "path", "requestId", "statusCode", "timestamp"}


@pytest.fixture
async def fake_aiml() -> AsyncIterator[FakeAiml]:
    """A near-instant generation: these tests check shapes, and twenty of them add up."""
    async with FakeAiml(latency=0.01) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def generate(
    session: aiohttp.ClientSession, fake: FakeAiml, body: object, *, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        f"{fake.base_url}/images/generations",
        json=body,
        headers={"Authorization": f"Bearer {token or fake.token}"},
    ) as response:
        return response.status, await response.json()


async def generate_status(session: aiohttp.ClientSession, fake: FakeAiml) -> int:
    """Only the status, for answers that are not JSON."""
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with session.post(
        f"{fake.base_url}/images/generations", json=BODY, headers=headers
    ) as response:
        return response.status


async def download(session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
    async with session.get(url) as response:
        return response.status, await response.read()


def picture(data: bytes) -> PillowImage.Image:
    return PillowImage.open(io.BytesIO(data))


async def test_success_returns_each_image_with_the_rewritten_prompt(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    status, answer = await generate(session, fake_aiml, {**BODY, "num_images": 3})

    assert status == 200
    assert [item["prompt"] for item in answer["data"]] == [BODY["prompt"] + ENHANCEMENT] * 3
    assert {item["mime_type"] for item in answer["data"]} == {"image/png"}
    assert answer["meta"] == {"usage": {"credits_used": 3 * USAGE_PER_IMAGE}}
    [generation] = fake_aiml.generations
    assert (generation.images, generation.prompt_used) == (3, BODY["prompt"] + ENHANCEMENT)


async def test_image_urls_serve_real_pngs_at_imagen_size_without_auth(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    _, answer = await generate(session, fake_aiml, {**BODY, "aspect_ratio": "16:9"})
    url = answer["data"][0]["url"]

    status, data = await download(session, url)

    assert url.startswith(f"{fake_aiml.origin}/files/{fake_aiml.generations[0].id}/")
    assert status == 200
    assert (picture(data).format, picture(data).size) == ("PNG", (1408, 768))


async def test_enhance_prompt_false_echoes_the_prompt_unchanged(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    _, answer = await generate(session, fake_aiml, {**BODY, "enhance_prompt": False})

    assert answer["data"][0]["prompt"] == BODY["prompt"]


async def test_base64_mode_inlines_the_png_and_nulls_the_url(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    body = {**BODY, "convert_base64_to_url": False, "aspect_ratio": "3:4"}

    _, answer = await generate(session, fake_aiml, body)

    [item] = answer["data"]
    assert item["url"] is None
    inline = base64.b64decode(item["b64_json"])
    assert (picture(inline).format, picture(inline).size) == ("PNG", (896, 1280))


async def test_json_answers_and_errors_say_utf8(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    url = f"{fake_aiml.base_url}/images/generations"
    headers = {"Authorization": f"Bearer {fake_aiml.token}"}

    async with session.post(url, json=BODY, headers=headers) as success:
        success_type = success.headers["Content-Type"]
    async with session.post(url, json=BODY) as unauthorized:
        error_type = unauthorized.headers["Content-Type"]

    assert success_type == error_type == "application/json; charset=utf-8"


async def test_wrong_key_is_401_with_the_aiml_error_body_and_not_billed(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    status, error = await generate(session, fake_aiml, BODY, token="wrong")

    assert status == 401
    assert set(error) == ERROR_FIELDS
    assert (error["message"], error["statusCode"]) == (UNAUTHORIZED, 401)
    assert error["path"] == "/v1/images/generations"
    assert fake_aiml.generation_count == 0


async def test_every_request_is_recorded_with_its_body(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    await generate(session, fake_aiml, BODY, token="wrong")
    await generate(session, fake_aiml, BODY)

    posts = fake_aiml.requests_to("POST", "/images/generations")
    assert [post.json() for post in posts] == [BODY, BODY]
    assert posts[1].headers["Authorization"] == f"Bearer {fake_aiml.token}"


async def test_prompt_over_400_characters_is_400_and_not_billed(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    status, error = await generate(session, fake_aiml, {**BODY, "prompt": "x" * 401})

    assert status == 400
    assert error["message"].startswith("Body validation error! prompt:")
    assert fake_aiml.generation_count == 0


async def test_prompt_length_counts_utf16_units_as_a_javascript_validator_does(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fits, _ = await generate(session, fake_aiml, {**BODY, "prompt": "🦊" * 200})
    too_long, _ = await generate(session, fake_aiml, {**BODY, "prompt": "🦊" * 201})

    assert (fits, too_long) == (200, 400)


async def test_unknown_top_level_key_is_400_and_not_billed(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    status, error = await generate(session, fake_aiml, {**BODY, "negative_prompt": "blur"})

    assert status == 400
    assert "'negative_prompt'" in error["message"]
    assert fake_aiml.generation_count == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "google/imagen-4"),
        ("prompt", ""),
        ("prompt", 7),
        ("num_images", 0),
        ("num_images", 5),
        ("num_images", 1.5),
        ("num_images", "2"),
        ("num_images", True),
        ("seed", -1),
        ("seed", 4294967296),
        ("aspect_ratio", "2:1"),
        ("person_generation", "allow_all"),
        ("safety_setting", "block_none"),
        ("add_watermark", "false"),
        ("enhance_prompt", 1),
        ("convert_base64_to_url", None),
    ],
)
async def test_schema_violation_is_400_naming_the_field(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession, field: str, value: object
) -> None:
    status, error = await generate(session, fake_aiml, {**BODY, field: value})

    assert status == 400
    assert error["message"].startswith(f"Body validation error! {field}:")
    assert fake_aiml.generation_count == 0


async def test_missing_prompt_is_400(fake_aiml: FakeAiml, session: aiohttp.ClientSession) -> None:
    status, error = await generate(session, fake_aiml, {"model": MODELS["ultra"]})

    assert status == 400
    assert error["message"] == "Body validation error! prompt: Required"


async def test_the_full_documented_schema_is_accepted(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    body = {
        **BODY,
        "model": MODELS["standard"],
        "convert_base64_to_url": True,
        "num_images": 4,
        "seed": 4294967295,
        "enhance_prompt": True,
        "aspect_ratio": "9:16",
        "person_generation": "dont_allow",
        "safety_setting": "block_only_high",
        "add_watermark": False,
    }

    status, answer = await generate(session, fake_aiml, body)

    assert (status, len(answer["data"])) == (200, 4)


async def test_drifted_api_answers_201(session: aiohttp.ClientSession) -> None:
    async with FakeAiml(success_status=201) as fake:
        status, answer = await generate(session, fake, BODY)

    assert status == 201
    assert len(answer["data"]) == 1


async def test_older_api_reports_tokens_used(session: aiohttp.ClientSession) -> None:
    async with FakeAiml(usage_field="tokens_used") as fake:
        _, answer = await generate(session, fake, BODY)

    assert answer["meta"] == {"usage": {"tokens_used": USAGE_PER_IMAGE}}


async def test_scripted_timeout_answers_504_with_the_aiml_body(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(generation_timeout())

    status, error = await generate(session, fake_aiml, BODY)

    assert status == 504
    assert set(error) == ERROR_FIELDS
    assert (error["message"], error["statusCode"]) == ("Generation timeout", 504)
    assert fake_aiml.generation_count == 0


async def test_scripted_answers_are_used_once_in_order(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(out_of_credits(), ScriptedResponse.html(502))

    statuses = [(await generate_status(session, fake_aiml)) for _ in range(3)]

    assert statuses == [403, 502, 200]


async def test_out_of_credits_is_403_with_the_verbatim_message(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(out_of_credits())

    status, error = await generate(session, fake_aiml, BODY)

    assert (status, error["message"]) == (403, OUT_OF_CREDITS)


async def test_throttled_carries_retry_after_and_a_string_status_code(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(throttled(retry_after=2))
    headers = {"Authorization": f"Bearer {fake_aiml.token}"}

    async with session.post(
        f"{fake_aiml.base_url}/images/generations", json=BODY, headers=headers
    ) as response:
        error = await response.json()

    assert (response.status, response.headers["Retry-After"]) == (429, "2")
    assert (error["message"], error["statusCode"]) == ("Too Many Requests", "429")


async def test_slow_scripted_answer_still_bills_but_answers_late(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(ScriptedResponse.slow(0.2))
    started = time.monotonic()

    status, answer = await generate(session, fake_aiml, BODY)

    assert time.monotonic() - started >= 0.2
    assert (status, len(answer["data"])) == (200, 1)
    assert fake_aiml.generation_count == 1


async def test_dropped_connection_still_bills(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(ScriptedResponse.disconnect())

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await generate(session, fake_aiml, BODY)

    assert fake_aiml.generation_count == 1


async def test_timeout_after_the_work_is_done_bills_and_answers_504(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.script_generation(replace(generation_timeout(), then_handle=True))

    status, _ = await generate(session, fake_aiml, BODY)

    assert status == 504
    assert fake_aiml.generation_count == 1


async def test_block_next_answers_empty_data_once(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    fake_aiml.block_next()

    blocked_status, blocked = await generate(session, fake_aiml, BODY)
    _, normal = await generate(session, fake_aiml, BODY)

    assert (blocked_status, blocked["data"]) == (200, [])
    assert len(normal["data"]) == 1
    assert [generation.images for generation in fake_aiml.generations] == [0, 1]


async def test_expired_files_answer_404(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    _, answer = await generate(session, fake_aiml, BODY)
    fake_aiml.expire_files()

    status, _ = await download(session, answer["data"][0]["url"])

    assert status == 404


async def test_scripted_file_answer_replaces_the_next_download(
    fake_aiml: FakeAiml, session: aiohttp.ClientSession
) -> None:
    _, answer = await generate(session, fake_aiml, BODY)
    fake_aiml.script_file(ScriptedResponse.html(502))
    url = answer["data"][0]["url"]

    first, _ = await download(session, url)
    second, _ = await download(session, url)

    assert (first, second) == (502, 200)
    assert len(fake_aiml.requests_to("GET", "/files/")) == 2
