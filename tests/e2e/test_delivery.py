"""Where a result goes when its channel refuses it: the member's own private response, which
is edited (never a second message), so a restart mid-delivery cannot send it twice; once the
interaction token has expired, a direct message, sent with an enforced nonce for the same
reason. Failures go only to the member, the same two ways."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from bot.core.domain import Tier
from bot.publisher import DIRECT_NOTE, FALLBACK_NOTE
from tests.e2e.conftest import BotRunner, RunningBot, eventually
from tests.fakes.fake_discord import EPHEMERAL, FakeInteraction
from tests.fakes.loopback import render_image

LIGHTHOUSE = {"prompt": "a lighthouse at dusk"}


def private_results(interaction: FakeInteraction) -> list[dict[str, Any]]:
    """The edits of the member's response that show results."""
    return [
        record
        for record in interaction.responses
        if record["kind"] == "edit" and record.get("content") == FALLBACK_NOTE
    ]


def webhook_calls(bot: RunningBot, interaction: FakeInteraction) -> list[tuple[str, str]]:
    return [request for request in bot.discord.requests if interaction.token in request[1]]


def stored_images(database: Path) -> list[Path]:
    """Every job's image files, as the bot recorded them."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT image_paths FROM jobs ORDER BY id").fetchall()
    return [Path(path) for (paths,) in rows for path in json.loads(paths)]


def channel_posts_tried(bot: RunningBot, channel_id: int) -> int:
    """How many times the bot tried to post in the channel, answered or refused."""
    return bot.discord.requests.count(("POST", f"/api/v10/channels/{channel_id}/messages"))


async def token_expired_mid_job(bot: RunningBot) -> FakeInteraction:
    """/imagine whose interaction token expires while its image is being made, as when the
    image takes longer than the token's 15 minutes."""
    bot.replicate.processing_seconds = 0.5
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)
    await eventually(lambda: bot.job_states() == ["submitted"])
    bot.discord.expire_interaction_token(interaction.token)
    return interaction


def forget_delivery(database: Path) -> None:
    """What a kill between the private edit and its record leaves: a succeeded job."""
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "UPDATE jobs SET state = 'succeeded', charge = 'reserved', delivered_at = NULL"
        )


async def test_a_deleted_channel_gets_the_image_in_the_private_response(bot: RunningBot) -> None:
    bot.discord.delete_channel(bot.discord.channel_id)
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)

    await eventually(lambda: bool(private_results(interaction)))
    await eventually(lambda: bot.job_states() == ["delivered"])

    [shown] = private_results(interaction)
    assert shown["message"]["flags"] & EPHEMERAL
    assert len(shown["attachments"]) == 1
    assert [r["kind"] for r in interaction.responses].count("followup") == 0
    assert bot.discord.channel_messages[bot.discord.channel_id] == []


async def shown_privately_then_forgotten(runner: BotRunner) -> FakeInteraction:
    """A result shown privately (its channel is gone) whose record a crash lost."""
    runner.discord.delete_channel(runner.discord.channel_id)
    async with runner.run() as bot:
        interaction, _ = await bot.command("imagine", LIGHTHOUSE)
        await eventually(lambda: bot.job_states() == ["delivered"])
    forget_delivery(bot.database)
    return interaction


async def test_a_restart_between_the_private_result_and_its_record_shows_it_once(
    runner: BotRunner,
) -> None:
    interaction = await shown_privately_then_forgotten(runner)

    async with runner.run() as bot:
        await eventually(lambda: bot.job_states() == ["delivered"])

    first, again = private_results(interaction)
    assert again["embeds"] == first["embeds"]
    assert [a["filename"] for a in again["message"]["attachments"]] == [
        a["filename"] for a in first["message"]["attachments"]
    ]
    assert [r["kind"] for r in interaction.responses].count("followup") == 0
    assert runner.replicate.create_count == 1


async def test_an_expired_interaction_token_hands_the_result_to_a_direct_message_at_once(
    bot: RunningBot,
) -> None:
    bot.discord.delete_channel(bot.discord.channel_id)
    interaction = await token_expired_mid_job(bot)
    calls_before = len(webhook_calls(bot, interaction))

    # Without the 2 + 10 + 30 s of retries a transient error would get.
    await eventually(lambda: bot.job_states() == ["delivered"], timeout=5)

    assert len(webhook_calls(bot, interaction)) == calls_before + 1
    assert private_results(interaction) == []
    assert len(bot.discord.direct_messages(bot.discord.user_id)) == 1


async def test_a_result_whose_channel_is_gone_after_the_token_expired_arrives_by_direct_message(
    bot: RunningBot,
) -> None:
    bot.discord.delete_channel(bot.discord.channel_id)
    await token_expired_mid_job(bot)

    [dm] = await bot.discord.wait_for_direct_message()
    await eventually(lambda: bot.job_states() == ["delivered"])

    assert dm["content"] == DIRECT_NOTE
    [image] = stored_images(bot.database)
    [attachment] = dm["attachments"]
    assert attachment["data"] == image.read_bytes()
    [embed] = dm["embeds"]
    assert embed["description"] == "a lighthouse at dusk"
    assert dm["nonce"] == "imagine-dm-1"
    assert bot.discord.channel_messages[bot.discord.channel_id] == []


async def test_a_failure_after_the_token_expired_is_told_by_direct_message_only(
    bot: RunningBot,
) -> None:
    bot.replicate.fail_next()  # a safety block
    await token_expired_mid_job(bot)

    [dm] = await bot.discord.wait_for_direct_message()
    await eventually(lambda: bot.job_states() == ["delivered"])

    [embed] = dm["embeds"]
    assert embed["title"] == "Your image could not be made"
    assert "safety filter" in embed["description"]
    assert dm["attachments"] == []
    # The channel works, but a failure (it may quote a blocked prompt) is never posted there.
    assert channel_posts_tried(bot, bot.discord.channel_id) == 0
    assert bot.discord.channel_messages[bot.discord.channel_id] == []


async def test_a_channel_refusing_for_good_gets_the_image_privately_without_retries(
    bot: RunningBot,
) -> None:
    bot.discord.archive_thread(bot.discord.channel_id)  # 400 50083: no retry can change it
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)

    await eventually(lambda: bot.job_states() == ["delivered"], timeout=5)

    [shown] = private_results(interaction)
    assert len(shown["attachments"]) == 1
    assert channel_posts_tried(bot, bot.discord.channel_id) == 1


async def test_a_channel_closed_to_the_bot_gets_the_image_in_the_private_response(
    bot: RunningBot,
) -> None:
    bot.discord.forbid_channel(bot.discord.channel_id)  # 403 50013 Missing Permissions
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)

    await eventually(lambda: bool(private_results(interaction)))
    await eventually(lambda: bot.job_states() == ["delivered"])

    [shown] = private_results(interaction)
    assert shown["message"]["flags"] & EPHEMERAL
    assert len(shown["attachments"]) == 1
    assert channel_posts_tried(bot, bot.discord.channel_id) == 1
    assert bot.discord.channel_messages[bot.discord.channel_id] == []
    assert bot.discord.direct_messages(bot.discord.user_id) == []


async def test_no_channel_no_token_and_closed_dms_leave_the_job_undeliverable_with_its_image(
    bot: RunningBot,
) -> None:
    bot.discord.close_direct_messages(bot.discord.user_id)  # 403 50007
    bot.discord.delete_channel(bot.discord.channel_id)
    interaction = await token_expired_mid_job(bot)

    await eventually(lambda: bot.job_states() == ["undeliverable"], timeout=5)

    [image] = stored_images(bot.database)
    assert image.is_file()
    assert image.stat().st_size > 0
    dm_channel = bot.discord.direct_message_channels[bot.discord.user_id]
    assert channel_posts_tried(bot, dm_channel) == 1  # tried, and refused
    assert bot.discord.direct_messages(bot.discord.user_id) == []
    assert private_results(interaction) == []


async def test_a_restart_between_the_direct_message_and_its_record_sends_it_once(
    runner: BotRunner,
) -> None:
    runner.discord.delete_channel(runner.discord.channel_id)
    async with runner.run() as bot:
        await token_expired_mid_job(bot)
        await eventually(lambda: bot.job_states() == ["delivered"])
    forget_delivery(bot.database)

    async with runner.run() as bot:
        await eventually(lambda: bot.job_states() == ["delivered"])

    dm_channel = runner.discord.direct_message_channels[runner.discord.user_id]
    assert channel_posts_tried(bot, dm_channel) == 2  # sent again with the same nonce
    assert len(runner.discord.direct_messages(runner.discord.user_id)) == 1
    assert runner.replicate.create_count == 1


async def test_every_image_of_a_request_shows_in_the_one_private_response(
    bot: RunningBot,
) -> None:
    bot.discord.delete_channel(bot.discord.channel_id)
    interaction, _ = await bot.command("imagine", {**LIGHTHOUSE, "count": 2})

    await eventually(lambda: bot.job_states() == ["delivered", "delivered"])

    last = private_results(interaction)[-1]
    assert len(last["message"]["attachments"]) == 2
    [embed] = last["embeds"]  # one embed for the request's images
    assert embed["footer"]["text"].startswith("Jobs #1 to #2")


async def test_a_restart_after_the_private_result_never_posts_it_in_the_channel_too(
    runner: BotRunner,
) -> None:
    interaction = await shown_privately_then_forgotten(runner)
    runner.discord.restore_channel(runner.discord.channel_id)

    async with runner.run() as bot:
        await eventually(lambda: bot.job_states() == ["delivered"])

    assert len(private_results(interaction)) == 2  # the same edit, repeated
    assert bot.discord.channel_messages[bot.discord.channel_id] == []


async def test_four_images_that_fit_one_by_one_but_not_together_are_re_encoded_to_fit(
    runner: BotRunner,
) -> None:
    """Discord answers 413 40005 when a message's files pass the limit together."""
    prompt = "a lighthouse at dusk"
    sizes = [len(render_image(f"{prompt}#{index}", "1:1", png=True)[0]) for index in range(4)]
    runner.discord.attachment_size_limit = max(sizes) * 5 // 2
    async with runner.run(tiers={tier.value: {"providers": ["aiml"]} for tier in Tier}) as bot:
        await bot.command("imagine", {"prompt": prompt, "count": 4})
        [post] = await bot.channel_posts()
        await eventually(lambda: bot.job_states() == ["delivered"])

    assert len(post["attachments"]) == 4
    assert sum(len(a["data"]) for a in post["attachments"]) <= runner.discord.attachment_size_limit
    fields = {field["name"]: field["value"] for field in post["embeds"][0]["fields"]}
    assert "Re-encoded as JPEG" in fields["Re-encoded"]
