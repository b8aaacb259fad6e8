"""/imagine end to end with each seed configuration (Replicate fast/standard/ultra, AIML,
Apikley) and with one tier routed across all three while one of them fails."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image as PillowImage

from bot.core.domain import Tier
from tests.e2e.conftest import BotRunner, eventually
from tests.fakes.fake_aiml import MODELS as AIML_MODELS
from tests.fakes.fake_apikley import MODELS as APIKLEY_MODELS
from tests.fakes.fake_replicate import throttled
from tests.fakes.loopback import ScriptedResponse


def routed(*providers: str) -> dict[str, dict[str, Any]]:
    return {tier.value: {"providers": list(providers)} for tier in Tier}


def picture(attachment: dict[str, Any]) -> tuple[str | None, tuple[int, int]]:
    with PillowImage.open(io.BytesIO(attachment["data"])) as image:
        return image.format, image.size


def fields_of(post: dict[str, Any]) -> dict[str, str]:
    [embed] = post["embeds"]
    return {field["name"]: field["value"] for field in embed["fields"]}


@pytest.mark.parametrize(
    ("tier", "model"),
    [
        ("fast", "google/imagen-4-fast"),
        ("standard", "google/imagen-4"),
        ("ultra", "google/imagen-4-ultra"),
    ],
)
@pytest.mark.parametrize("provider", ["replicate", "kkiai"])
async def test_replicate_and_its_proxy_serve_each_tier(
    runner: BotRunner, provider: str, tier: str, model: str
) -> None:
    fake = runner.providers.replicate if provider == "replicate" else runner.providers.kkiai
    async with runner.run(tiers=routed(provider)) as bot:
        await bot.command("imagine", {"prompt": "a red fox", "tier": tier, "aspect_ratio": "4:3"})

        [post] = await bot.channel_posts()

    [attachment] = post["attachments"]
    assert picture(attachment) == ("JPEG", (1280, 896))
    [prediction] = fake.predictions.values()
    assert prediction.model == model


async def test_several_images_from_replicate_come_as_one_post_with_one_mention(
    runner: BotRunner,
) -> None:
    async with runner.run() as bot:
        _, reply = await bot.command("imagine", {"prompt": "a red fox", "count": 3})

        [post] = await bot.channel_posts()
        await eventually(lambda: bot.job_states() == ["delivered"] * 3)

    [queued] = reply["data"]["embeds"]
    assert "3 images" in {f["name"]: f["value"] for f in queued["fields"]}["Images"]
    assert len(post["attachments"]) == 3
    assert [user["id"] for user in post["message"]["mentions"]] == [str(bot.discord.user_id)]
    assert bot.discord.channel_messages[bot.discord.channel_id] == [post]
    assert runner.replicate.create_count == 3


async def test_aiml_serves_several_images_in_one_post(runner: BotRunner) -> None:
    async with runner.run(tiers=routed("aiml")) as bot:
        await bot.command("imagine", {"prompt": "a red fox", "tier": "ultra", "count": 2})

        [post] = await bot.channel_posts()

    assert [picture(a) for a in post["attachments"]] == [("PNG", (1024, 1024))] * 2
    [generation] = runner.providers.aiml.generations
    assert (generation.body["model"], generation.body["num_images"]) == (AIML_MODELS["ultra"], 2)


async def test_apikley_serves_through_its_callback(runner: BotRunner) -> None:
    async with runner.run(tiers=routed("apikley")) as bot:
        await bot.command(
            "imagine", {"prompt": "a red fox", "tier": "standard", "negative_prompt": "snow"}
        )

        [post] = await bot.channel_posts()

    [attachment] = post["attachments"]
    assert picture(attachment) == ("PNG", (1024, 1024))
    assert fields_of(post)["Not in the image"] == "snow"
    [task] = runner.providers.apikley.tasks.values()
    assert (task.model, task.input["negative_prompt"]) == (APIKLEY_MODELS["standard"], "snow")
    [callback] = runner.providers.apikley.callback_deliveries
    assert callback.status == 200


async def test_duplicate_apikley_callbacks_post_the_image_once(runner: BotRunner) -> None:
    runner.providers.apikley.callback_copies = 3
    async with runner.run(tiers=routed("apikley")) as bot:
        await bot.command("imagine", {"prompt": "a red fox"})
        await bot.channel_posts()
        await runner.providers.apikley.wait_for_callbacks(3)

        posts = await bot.channel_posts()

    assert len(posts) == 1


async def test_a_missing_apikley_callback_is_made_up_for_by_polling(runner: BotRunner) -> None:
    runner.providers.apikley.send_callbacks = False
    async with runner.run(tiers=routed("apikley")) as bot:
        await bot.command("imagine", {"prompt": "a red fox"})

        [post] = await bot.channel_posts()

    assert len(post["attachments"]) == 1
    assert runner.providers.apikley.callback_deliveries == []


async def test_a_tier_across_all_three_types_survives_one_failing(runner: BotRunner) -> None:
    runner.replicate.script_create(*(throttled(retry_after=30) for _ in range(3)))
    runner.providers.aiml.script_generation(ScriptedResponse.html(502))
    async with runner.run(tiers=routed("replicate", "aiml", "apikley")) as bot:
        await bot.command("imagine", {"prompt": "a red fox"})
        await bot.command("imagine", {"prompt": "a grey wolf"})

        posts = await bot.channel_posts(count=2)

    assert all(len(post["attachments"]) == 1 for post in posts)
    assert runner.replicate.create_count == 0
    # The HTML page may have come after AIML made the image, so that job never went back.
    assert runner.providers.aiml.generation_count <= 1
    assert runner.providers.apikley.create_count >= 1


async def test_an_option_the_provider_cannot_apply_is_said_in_the_reply_and_the_post(
    runner: BotRunner,
) -> None:
    async with runner.run(tiers=routed("apikley")) as bot:
        _, reply = await bot.command(
            "imagine", {"prompt": "a red fox", "safety": "block_only_high"}
        )

        [post] = await bot.channel_posts()

    [queued] = reply["data"]["embeds"]
    note = {field["name"]: field["value"] for field in queued["fields"]}["Note"]
    assert "safety level" in note
    assert "safety level" in fields_of(post)["Note"]


async def test_a_prompt_too_long_for_the_tiers_provider_is_refused_before_anything(
    runner: BotRunner,
) -> None:
    async with runner.run(tiers=routed("aiml")) as bot:
        _, reply = await bot.command("imagine", {"prompt": "a red fox " * 41})

    [embed] = reply["data"]["embeds"]
    assert "at most 400" in embed["description"]
    assert runner.providers.aiml.requests == []


async def test_admins_see_provider_health(runner: BotRunner) -> None:
    runner.replicate.script_create(throttled(retry_after=30))
    async with runner.run(tiers=routed("replicate", "aiml")) as bot:
        await bot.command("imagine", {"prompt": "a red fox"})
        await bot.channel_posts()

        _, reply = await bot.command("imagine-admin providers")

    [embed] = reply["data"]["embeds"]
    health = {field["name"]: field["value"] for field in embed["fields"]}
    assert health["replicate"].startswith("Backing off")
    assert "ProviderRateLimited" in health["replicate"]
    assert health["aiml"].startswith("Healthy")


async def test_a_provider_whose_create_answers_with_the_image_shows_the_time_as_generation(
    runner: BotRunner,
) -> None:
    runner.providers.aiml.latency = 0.5  # AIML's create is the generation itself
    async with runner.run(tiers=routed("aiml")) as bot:
        await bot.command("imagine", {"prompt": "a lighthouse at dusk"})
        [post] = await bot.channel_posts()

    fields = {f["name"]: f["value"] for f in post["embeds"][0]["fields"]}
    waited, generated = (float(part.split()[-2]) for part in fields["Time"].split(" · "))
    assert generated >= 0.5
    assert waited < 0.5
