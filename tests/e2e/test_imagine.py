"""/imagine from the member's click to the image in the channel, through the real client."""

from __future__ import annotations

import contextlib
import io
import sqlite3

from PIL import Image as PillowImage

from tests.e2e.conftest import BotRunner, RunningBot, eventually
from tests.fakes.fake_discord import DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE, EPHEMERAL

LIGHTHOUSE = {
    "prompt": "a lighthouse at dusk",
    "tier": "fast",
    "aspect_ratio": "16:9",
    "safety": "block_medium_and_above",
}


async def test_the_bot_syncs_its_commands(bot: RunningBot) -> None:
    names = {command["name"] for command in bot.discord.commands}
    assert names == {
        "imagine",
        "queue",
        "quota",
        "jobs",
        "help",
        "imagine-admin",
        "settings",
        "prompts",
    }


async def test_imagine_is_acknowledged_privately_within_three_seconds(bot: RunningBot) -> None:
    interaction, reply = await bot.command("imagine", LIGHTHOUSE)

    assert interaction.response_delay is not None
    assert interaction.response_delay < 3.0
    assert reply["data"]["flags"] & EPHEMERAL
    assert reply["data"]["embeds"][0]["title"] == "Queued"


async def test_the_image_arrives_in_the_channel_with_its_details(bot: RunningBot) -> None:
    await bot.command("imagine", LIGHTHOUSE)

    [post] = await bot.channel_posts()

    [attachment] = post["attachments"]
    with PillowImage.open(io.BytesIO(attachment["data"])) as image:
        assert (image.format, image.size) == ("JPEG", (1408, 768))
    [embed] = post["embeds"]
    assert embed["description"] == "a lighthouse at dusk"
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert (fields["Tier"], fields["Aspect ratio"]) == ("Fast", "16:9")
    assert fields["Options"] == "Safety: Balanced"
    assert fields["Time"].startswith("waited ")
    assert " · generated in " in fields["Time"]
    assert embed["footer"]["text"] == "Job #1 · 1 credit charged"


async def test_the_result_comes_through_the_signed_callback(bot: RunningBot) -> None:
    await bot.command("imagine", LIGHTHOUSE)
    await bot.channel_posts()

    [delivery] = bot.replicate.webhook_deliveries
    assert delivery.status == 200


async def test_the_result_pings_only_the_member_who_asked(bot: RunningBot) -> None:
    await bot.command("imagine", {"prompt": "@everyone look at <@1333333333333333330> <@&5>"})

    [post] = await bot.channel_posts()

    message = post["message"]
    assert [user["id"] for user in message["mentions"]] == [str(bot.discord.user_id)]
    assert message["mention_roles"] == []
    assert message["mention_everyone"] is False


async def test_an_empty_prompt_gets_a_friendly_error_and_no_job(bot: RunningBot) -> None:
    _, reply = await bot.command("imagine", {"prompt": "   "})

    assert "prompt is empty" in reply["data"]["embeds"][0]["description"]
    assert reply["data"]["flags"] & EPHEMERAL
    assert bot.replicate.requests == []


async def test_an_over_long_prompt_gets_the_limit_and_no_job(bot: RunningBot) -> None:
    _, reply = await bot.command("imagine", {"prompt": "x" * 1001})

    assert "the limit is 1000" in reply["data"]["embeds"][0]["description"]
    assert bot.replicate.requests == []


async def test_a_safety_block_is_told_privately_refunded_and_never_posted(
    bot: RunningBot,
) -> None:
    bot.replicate.fail_next()
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)

    await eventually(lambda: bot.job_states() == ["delivered"])

    [embed] = interaction.responses[-1]["embeds"]
    assert embed["title"] == "Your image could not be made"
    assert "safety filter" in embed["description"]
    assert {"name": "Refund", "value": "1 credit given back to you.", "inline": False} in embed[
        "fields"
    ]
    assert bot.discord.channel_messages[bot.discord.channel_id] == []


async def test_the_members_status_ends_in_done_with_a_link_to_the_result(
    bot: RunningBot,
) -> None:
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)
    [post] = await bot.channel_posts()

    await eventually(lambda: interaction.responses[-1]["embeds"][0].get("title") == "Done")

    [embed] = interaction.responses[-1]["embeds"]
    message = post["message"]
    assert embed["description"] == (
        f"[Jump to your result](https://discord.com/channels/{bot.discord.guild_id}/"
        f"{message['channel_id']}/{message['id']})"
    )


async def test_a_4000_character_markdown_prompt_is_answered_and_posted(
    runner: BotRunner,
) -> None:
    prompt = "*_~|>`\\" * 571 + "***"  # 4,000 characters, each doubled by escaping
    async with runner.run(discord={"max_prompt_length": 4000}) as bot:
        _, reply = await bot.command("imagine", {"prompt": prompt})

        [post] = await bot.channel_posts()

    assert reply["data"]["embeds"][0]["title"] == "Queued"
    assert len(post["attachments"]) == 1


async def test_the_first_reply_does_not_wait_for_a_busy_database(bot: RunningBot) -> None:
    # Another writer holds the database (as a backup or a second process might).
    with contextlib.closing(sqlite3.connect(bot.database, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        interaction = await bot.discord.invoke_slash_command("imagine", LIGHTHOUSE)
        deferral = await interaction.wait_for_response()
        other.execute("COMMIT")

    shown = await interaction.wait_for_record("edit")

    assert deferral["type"] == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert interaction.response_delay is not None
    assert interaction.response_delay < 3.0
    assert shown["message"]["embeds"][0]["title"] == "Queued"


async def test_a_jobs_own_messages_come_after_the_members_reply(bot: RunningBot) -> None:
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)

    await bot.channel_posts()

    edits = [
        r["message"]["embeds"][0]["title"] for r in interaction.responses if r["kind"] == "edit"
    ]
    assert edits[0] == "Queued"
    assert edits[1:] == ["Generating"] * (len(edits) - 1)
