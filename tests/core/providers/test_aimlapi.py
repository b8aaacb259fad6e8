"""The AIML client against the fake AIML's real wire format (providers.md §2, §6)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from PIL import Image as PillowImage

from bot.core.domain import AspectRatio, Option, OutputFormat, SafetyLevel, Tier
from bot.core.errors import (
    CallbackRejected,
    ProviderAuthError,
    ProviderOutOfCredits,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    ResultUnavailable,
    SafetyBlocked,
)
from bot.core.providers.aimlapi import AimlProvider
from bot.core.providers.base import ProviderJob, ProviderStatus
from bot.core.providers.http import HttpClient
from tests.factories import a_request, an_aiml_provider
from tests.fakes.fake_aiml import (
    ENHANCEMENT,
    MODELS,
    USAGE_PER_IMAGE,
    FakeAiml,
    aiml_error,
    generation_timeout,
    out_of_credits,
    throttled,
)
from tests.fakes.loopback import ScriptedResponse, render_image

GENERATIONS = "/v1/images/generations"


@pytest.fixture
async def fake_aiml() -> AsyncIterator[FakeAiml]:
    """A near-instant generation: these tests are about the wire, not about waiting."""
    async with FakeAiml(latency=0.01) as fake:
        yield fake


def a_png() -> bytes:
    """A real PNG at Imagen's 1:1 size, for answers scripted with images inline."""
    return render_image("inline", "1:1", png=True)[0]


def a_b64_answer(*pngs: bytes, mime_type: str | None = "image/png") -> ScriptedResponse:
    """A 200 with images inline, as ``convert_base64_to_url: false`` makes AIML answer."""
    data: list[dict[str, object]] = []
    for png in pngs:
        item: dict[str, object] = {"url": None, "b64_json": base64.b64encode(png).decode()}
        if mime_type is not None:
            item["mime_type"] = mime_type
        data.append(item)
    usage = {"credits_used": USAGE_PER_IMAGE * len(pngs)}
    return ScriptedResponse.json(200, {"data": data, "meta": {"usage": usage}})


def sent_body(fake: FakeAiml) -> dict[str, object]:
    [sent] = fake.requests_to("POST", GENERATIONS)
    body: dict[str, object] = sent.json()
    return body


def size_of(data: bytes) -> tuple[int, int]:
    return PillowImage.open(io.BytesIO(data)).size


async def generated(
    provider: AimlProvider, prompt: str = "a lighthouse at dusk", **overrides: object
) -> ProviderJob:
    return await provider.start(a_request(prompt, **overrides), callback_url=None)


# ---------------------------------------------------------------------- success


async def test_generation_succeeds_at_once_with_one_url_per_image(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    job = await generated(provider, image_count=3)

    assert job.status is ProviderStatus.SUCCEEDED
    assert job.failure is None
    [generation] = fake_aiml.generations
    assert job.output_urls == tuple(
        f"{fake_aiml.origin}/files/{generation.id}/{index}.png" for index in range(3)
    )


async def test_download_returns_the_real_pngs_at_imagen_size(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)
    job = await generated(provider, image_count=2, aspect_ratio=AspectRatio.LANDSCAPE_WIDE)

    images = await provider.download(job)

    [generation] = fake_aiml.generations
    assert [image.extension for image in images] == ["png", "png"]
    assert [image.path.read_bytes() for image in images] == [generation.png(0), generation.png(1)]
    assert size_of(images[0].path.read_bytes()) == (1408, 768)


async def test_create_sends_the_key_and_the_documented_body(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    await generated(
        provider,
        tier=Tier.STANDARD,
        image_count=4,
        aspect_ratio=AspectRatio.PORTRAIT,
        safety=SafetyLevel.BLOCK_ONLY_HIGH,
        seed=1234,
    )

    [sent] = fake_aiml.requests_to("POST", GENERATIONS)
    assert sent.headers["Authorization"] == f"Bearer {fake_aiml.token}"
    assert sent.json() == {
        "model": "google/imagen-4.0-generate-001",
        "prompt": "a lighthouse at dusk",
        "num_images": 4,
        "aspect_ratio": "3:4",
        "safety_setting": "block_only_high",
        "enhance_prompt": False,
        "person_generation": "allow_adult",
        "convert_base64_to_url": True,
        "seed": 1234,
    }


@pytest.mark.parametrize("tier", list(Tier))
async def test_each_tier_is_sent_as_its_own_model_id(
    fake_aiml: FakeAiml, http: HttpClient, tier: Tier
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    await generated(provider, tier=tier)

    assert sent_body(fake_aiml)["model"] == MODELS[tier.value]


@pytest.mark.parametrize("safety", list(SafetyLevel))
async def test_safety_level_is_sent_as_safety_setting(
    fake_aiml: FakeAiml, http: HttpClient, safety: SafetyLevel
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    await generated(provider, safety=safety)

    body = sent_body(fake_aiml)
    assert body["safety_setting"] == safety.value
    assert "safety_filter_level" not in body


async def test_request_without_a_seed_sends_no_seed(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    await generated(provider, seed=None)

    assert "seed" not in sent_body(fake_aiml)


async def test_seed_zero_is_still_sent(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    await generated(provider, seed=0)

    assert sent_body(fake_aiml)["seed"] == 0


async def test_prompt_is_kept_as_written_by_default(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    job = await generated(provider, prompt="a red fox in the snow")

    assert sent_body(fake_aiml)["enhance_prompt"] is False
    assert job.prompt_used == "a red fox in the snow"


async def test_enhanced_prompt_is_reported_as_the_prompt_used(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http, enhance_prompt=True)

    job = await generated(provider, prompt="a red fox in the snow")

    assert sent_body(fake_aiml)["enhance_prompt"] is True
    assert job.prompt_used == "a red fox in the snow" + ENHANCEMENT


async def test_person_generation_setting_is_sent(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http, person_generation="dont_allow")

    await generated(provider)

    assert sent_body(fake_aiml)["person_generation"] == "dont_allow"


async def test_inline_base64_images_are_decoded_without_a_download(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    png = a_png()
    fake_aiml.script_generation(a_b64_answer(png, png))
    provider = an_aiml_provider(fake_aiml, http)

    job = await generated(provider, image_count=2)
    images = await provider.download(job)

    assert job.status is ProviderStatus.SUCCEEDED
    assert all(url.startswith("data:image/png;base64,") for url in job.output_urls)
    assert [(image.path.read_bytes(), image.extension) for image in images] == [
        (png, "png"),
        (png, "png"),
    ]
    assert fake_aiml.requests_to("GET", "/files/") == []


async def test_inline_image_without_a_mime_type_is_taken_as_png(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    png = a_png()
    fake_aiml.script_generation(a_b64_answer(png, mime_type=None))
    provider = an_aiml_provider(fake_aiml, http)

    job = await generated(provider)
    [image] = await provider.download(job)

    assert job.output_urls[0].startswith("data:image/png;base64,")
    assert image.extension == "png"


async def test_older_tokens_used_usage_field_is_accepted(http: HttpClient) -> None:
    async with FakeAiml(latency=0.01, usage_field="tokens_used") as fake:
        provider = an_aiml_provider(fake, http)

        job = await generated(provider)
        [image] = await provider.download(job)

    assert job.status is ProviderStatus.SUCCEEDED
    assert image.extension == "png"


async def test_201_success_status_of_the_2025_spec_is_accepted(http: HttpClient) -> None:
    async with FakeAiml(latency=0.01, success_status=201) as fake:
        provider = an_aiml_provider(fake, http)

        job = await generated(provider)
        [image] = await provider.download(job)

    assert job.status is ProviderStatus.SUCCEEDED
    assert image.extension == "png"


async def test_every_generation_gets_its_own_job_id(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    first = await generated(provider)
    second = await generated(provider)

    assert first.id != second.id
    assert first.id.startswith("aiml-")


# ---------------------------------------------------------------------- errors


async def test_validation_error_is_a_rejection_that_is_not_the_providers_fault(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http, models={"fast": "google/imagen-9"})

    with pytest.raises(ProviderRejected) as raised:
        await generated(provider)

    assert not raised.value.provider_fault
    assert (raised.value.detail or "").startswith("Body validation error! model:")
    assert fake_aiml.generation_count == 0


async def test_prompt_over_400_characters_is_a_rejection(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderRejected) as raised:
        await generated(provider, prompt="x" * 401)

    assert "at most 400" in (raised.value.detail or "")
    assert fake_aiml.generation_count == 0


def test_the_prompt_limit_counts_an_emoji_twice_as_aiml_does(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)
    prompt = "a fox \N{FOX FACE}" + "!" * 393  # 400 code points, 401 UTF-16 units

    assert not provider.capabilities(Tier.FAST).accepts_prompt(prompt)


async def test_a_prompt_the_capabilities_accept_is_accepted_by_aiml(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)
    prompt = "a fox \N{FOX FACE}" + "!" * 392  # 399 code points, 400 UTF-16 units
    assert provider.capabilities(Tier.FAST).accepts_prompt(prompt)

    job = await generated(provider, prompt=prompt)

    assert job.status is ProviderStatus.SUCCEEDED


async def test_bad_key_is_an_auth_error(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http, api_key="aiml_revoked")

    with pytest.raises(ProviderAuthError) as raised:
        await generated(provider)

    assert type(raised.value) is ProviderAuthError
    assert (raised.value.detail or "").startswith("This request requires a valid API key.")
    assert fake_aiml.generation_count == 0


async def test_403_is_out_of_credits(fake_aiml: FakeAiml, http: HttpClient) -> None:
    fake_aiml.script_generation(out_of_credits())
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderOutOfCredits) as raised:
        await generated(provider)

    assert (raised.value.detail or "").startswith("You've run out of credits.")


async def test_throttling_carries_retry_after(fake_aiml: FakeAiml, http: HttpClient) -> None:
    fake_aiml.script_generation(throttled(retry_after=7))
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderRateLimited) as raised:
        await generated(provider)

    assert raised.value.retry_after == 7
    assert raised.value.detail == "Too Many Requests"


async def test_throttling_without_retry_after_has_none(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    fake_aiml.script_generation(throttled())
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderRateLimited) as raised:
        await generated(provider)

    assert raised.value.retry_after is None


@pytest.mark.parametrize(
    ("status", "message"), [(500, "Internal server error"), (503, "Service unavailable")]
)
async def test_server_error_is_unavailable_with_aimls_message(
    fake_aiml: FakeAiml, http: HttpClient, status: int, message: str
) -> None:
    fake_aiml.script_generation(aiml_error(status, message))
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderUnavailable) as raised:
        await generated(provider)

    assert raised.value.detail == message
    assert raised.value.provider_fault


async def test_504_generation_timeout_is_a_timeout(fake_aiml: FakeAiml, http: HttpClient) -> None:
    fake_aiml.script_generation(generation_timeout())
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderTimeout) as raised:
        await generated(provider)

    assert raised.value.detail == "Generation timeout"


async def test_504_after_the_generation_was_billed_is_a_timeout(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    fake_aiml.script_generation(replace(generation_timeout(), then_handle=True))
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderTimeout):
        await generated(provider)

    assert fake_aiml.generation_count == 1


async def test_success_that_is_not_json_is_unavailable(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    fake_aiml.script_generation(ScriptedResponse(200, b"<html>ok</html>", "text/html"))
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderUnavailable):
        await generated(provider)


# ---------------------------------------------------------------------- blocks and results


async def test_empty_data_is_a_failed_job_blocked_by_safety(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    fake_aiml.block_next()
    provider = an_aiml_provider(fake_aiml, http)

    job = await generated(provider)

    assert job.status is ProviderStatus.FAILED
    assert isinstance(job.failure, SafetyBlocked)
    assert job.output_urls == ()


async def test_null_data_is_a_failed_job_blocked_by_safety(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    fake_aiml.script_generation(ScriptedResponse.json(200, {"data": None, "meta": None}))
    provider = an_aiml_provider(fake_aiml, http)

    job = await generated(provider)

    assert job.status is ProviderStatus.FAILED
    assert isinstance(job.failure, SafetyBlocked)


async def test_expired_file_is_unavailable_on_download(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)
    job = await generated(provider)
    fake_aiml.expire_files()

    with pytest.raises(ResultUnavailable):
        await provider.download(job)


async def test_cdn_error_page_on_download_is_unavailable(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)
    job = await generated(provider)
    fake_aiml.script_file(ScriptedResponse.html(502))

    with pytest.raises(ProviderUnavailable):
        await provider.download(job)


async def test_fetch_of_any_id_fails_as_unavailable_without_asking_aiml(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    job = await provider.fetch("aiml-0123456789abcdef")

    assert job.id == "aiml-0123456789abcdef"
    assert job.status is ProviderStatus.FAILED
    assert isinstance(job.failure, ResultUnavailable)
    assert fake_aiml.requests == []


async def test_cancel_asks_nothing_of_aiml(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    await provider.cancel("aiml-0123456789abcdef")

    assert fake_aiml.requests == []


async def test_any_callback_is_rejected(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http)
    body = json.dumps({"data": []}).encode()

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback({"Content-Type": "application/json"}, body)

    assert raised.value.status == 404
    assert fake_aiml.requests == []


# ---------------------------------------------------------------------- key check


async def test_check_key_accepts_the_right_key_without_billing(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    result = await provider.check_key()

    assert result == "key accepted"
    [sent] = fake_aiml.requests_to("POST", GENERATIONS)
    assert sent.headers["Authorization"] == f"Bearer {fake_aiml.token}"
    assert fake_aiml.generation_count == 0


async def test_check_key_refuses_a_wrong_key(fake_aiml: FakeAiml, http: HttpClient) -> None:
    provider = an_aiml_provider(fake_aiml, http, api_key="aiml_wrong_key")

    with pytest.raises(ProviderAuthError):
        await provider.check_key()

    assert fake_aiml.generation_count == 0


async def test_check_key_reports_an_empty_balance(fake_aiml: FakeAiml, http: HttpClient) -> None:
    fake_aiml.script_generation(out_of_credits())
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderOutOfCredits):
        await provider.check_key()


async def test_check_key_of_a_down_service_is_unavailable(
    fake_aiml: FakeAiml, http: HttpClient
) -> None:
    fake_aiml.script_generation(aiml_error(503, "Service unavailable"))
    provider = an_aiml_provider(fake_aiml, http)

    with pytest.raises(ProviderUnavailable):
        await provider.check_key()


# ---------------------------------------------------------------------- capabilities


@pytest.mark.parametrize("tier", list(Tier))
async def test_capabilities_are_four_pngs_with_seed_and_safety_but_no_negative_prompt(
    fake_aiml: FakeAiml, http: HttpClient, tier: Tier
) -> None:
    provider = an_aiml_provider(fake_aiml, http)

    capabilities = provider.capabilities(tier)

    assert capabilities.max_images == 4
    assert capabilities.max_prompt_length == 400
    assert capabilities.options == frozenset({Option.SEED, Option.SAFETY})
    assert Option.NEGATIVE_PROMPT not in capabilities.options
    assert capabilities.output_formats == frozenset({OutputFormat.PNG})
