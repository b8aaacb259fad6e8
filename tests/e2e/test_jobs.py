"""/jobs, its Show button, the notice of results that never arrived, and /help."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import RunningBot, eventually, shown_reply
from tests.fakes.fake_discord import EPHEMERAL

LIGHTHOUSE = {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"}
OTHER_MEMBER = 1444444444444444444


def buttons_of(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


def followups(interaction: Any) -> list[dict[str, Any]]:
    return [r["message"] for r in interaction.responses if r["kind"] == "followup"]


async def undelivered_job(bot: RunningBot) -> None:
    """A finished job that found no route: channel gone, token expired, DMs closed."""
    bot.replicate.processing_seconds = 0.5
    bot.discord.close_direct_messages(bot.discord.user_id)
    bot.discord.delete_channel(bot.discord.channel_id)
    interaction, _ = await bot.command("imagine", LIGHTHOUSE)
    await eventually(lambda: bot.job_states() == ["submitted"])
    bot.discord.expire_interaction_token(interaction.token)
    await eventually(lambda: bot.job_states() == ["undeliverable"])


async def test_jobs_lists_the_members_recent_images_with_a_show_button(bot: RunningBot) -> None:
    await bot.command("imagine", LIGHTHOUSE)
    await bot.channel_posts()
    await eventually(lambda: bot.job_states() == ["delivered"])

    _, listing = await bot.command("jobs")

    [embed] = listing["message"]["embeds"]
    assert embed["fields"][0]["name"] == "#1 · Fast · delivered"
    assert buttons_of(listing["message"]) == ["imagine:show:1"]


async def test_show_posts_the_stored_image_to_the_member_alone(bot: RunningBot) -> None:
    await bot.command("imagine", LIGHTHOUSE)
    [post] = await bot.channel_posts()
    await eventually(lambda: bot.job_states() == ["delivered"])
    _, listing = await bot.command("jobs")

    clicked = await bot.discord.click_button("imagine:show:1", listing["message"])
    shown = await shown_reply(clicked)

    assert shown["flags"] & EPHEMERAL
    [record] = [r for r in clicked.responses if r["kind"] in ("edit", "followup")]
    [attachment] = record["attachments"]
    assert attachment["data"] == post["attachments"][0]["data"]


async def test_show_refuses_someone_elses_image(bot: RunningBot) -> None:
    await bot.command("imagine", LIGHTHOUSE)
    await bot.channel_posts()
    await eventually(lambda: bot.job_states() == ["delivered"])
    _, listing = await bot.command("jobs")

    clicked = await bot.discord.click_button(
        "imagine:show:1", listing["message"], user_id=OTHER_MEMBER
    )
    reply = await shown_reply(clicked)

    assert "not one of yours" in reply["embeds"][0]["description"]


async def test_an_undelivered_result_is_told_at_the_next_command_once(bot: RunningBot) -> None:
    await undelivered_job(bot)
    bot.discord.restore_channel(bot.discord.channel_id)

    first, _ = await bot.command("quota")
    await eventually(lambda: bool(followups(first)))
    second, _ = await bot.command("quota")

    [notice] = followups(first)
    assert notice["embeds"][0]["title"] == "Some of your images could not reach you"
    fields = {f["name"]: f["value"] for f in notice["embeds"][0]["fields"]}
    assert fields["Kept for you"] == "Job(s) #1: use /jobs and press Show to see them."
    assert followups(second) == []


async def test_an_undelivered_failure_is_told_with_its_reason_not_as_kept_images(
    bot: RunningBot,
) -> None:
    bot.replicate.fail_next()
    await undelivered_job(bot)

    first, _ = await bot.command("quota")
    await eventually(lambda: bool(followups(first)))

    [notice] = followups(first)
    fields = {f["name"]: f["value"] for f in notice["embeds"][0]["fields"]}
    assert "Kept for you" not in fields
    assert "safety filter" in fields["Job #1 could not be made"]
    assert fields["Job #1 could not be made"].endswith("1 credit(s) given back.")


async def test_jobs_lists_an_undelivered_result_first_and_shows_it(bot: RunningBot) -> None:
    await undelivered_job(bot)
    bot.discord.restore_channel(bot.discord.channel_id)

    _, listing = await bot.command("jobs")
    clicked = await bot.discord.click_button("imagine:show:1", listing["message"])
    shown = await shown_reply(clicked)

    assert listing["message"]["embeds"][0]["fields"][0]["name"].endswith("not delivered: use Show")
    assert len(shown["attachments"]) == 1


async def test_help_names_the_commands_and_this_servers_prices(bot: RunningBot) -> None:
    _, reply = await bot.command("help")

    fields = {f["name"]: f["value"] for f in reply["message"]["embeds"][0]["fields"]}
    assert "**/jobs**" in fields["Commands"]
    assert "Ultra: 3 credit(s) per image" in fields["Tiers here"]
