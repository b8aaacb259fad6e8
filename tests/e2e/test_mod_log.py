"""The mod log: blocked prompts and safety-blocked jobs reported where the admins chose."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import RunningBot, eventually
from tests.e2e.test_blocklist import REFUSAL, block, text_of
from tests.e2e.test_channels import ART_CHANNEL
from tests.fakes.fake_discord import EPHEMERAL

MOD_LOG = ART_CHANNEL
MEMBER_PERMISSIONS = "0"  # no Manage Server


async def set_mod_log(bot: RunningBot, channel_id: int = MOD_LOG) -> None:
    _, reply = await bot.command("imagine-admin settings mod-log", {"channel": channel_id})
    assert "Mod log channel set." in text_of(reply["data"])


async def reports(bot: RunningBot) -> list[dict[str, Any]]:
    await eventually(lambda: bool(bot.discord.channel_messages[MOD_LOG]))
    return bot.discord.channel_messages[MOD_LOG]


async def test_a_blocked_prompt_is_reported_in_the_mod_log_without_a_ping(
    bot: RunningBot,
) -> None:
    await set_mod_log(bot)
    added = await block(bot, "lighthouse")

    _, refused = await bot.command("imagine", {"prompt": "a lighthouse at dusk"})

    assert REFUSAL in text_of(refused["data"])
    assert refused["data"]["flags"] & EPHEMERAL
    assert "lighthouse" not in text_of(refused["data"]).lower()
    [report] = await reports(bot)
    shown = text_of(report)
    assert f"<@{bot.discord.user_id}>" in shown
    assert "||a lighthouse at dusk||" in shown
    assert "blocklist entry #1 (term)" in shown, added
    assert report["allowed_mentions"]["parse"] == []


async def test_a_safety_blocked_job_is_reported_in_the_mod_log(bot: RunningBot) -> None:
    await set_mod_log(bot)
    bot.replicate.fail_next()

    await bot.command("imagine", {"prompt": "a stormy sea"})

    [report] = await reports(bot)
    shown = text_of(report)
    assert "safety filter" in report["embeds"][0]["title"]
    assert "||a stormy sea||" in shown
    assert "#1" in shown
    assert "replicate" in shown


async def test_without_a_mod_log_a_blocked_prompt_is_posted_nowhere(bot: RunningBot) -> None:
    await block(bot, "lighthouse")

    await bot.command("imagine", {"prompt": "a lighthouse at dusk"})

    assert bot.discord.channel_message_count == 0


async def test_a_deleted_mod_log_channel_does_not_stop_the_reply_or_the_delivery(
    bot: RunningBot,
) -> None:
    await set_mod_log(bot)
    bot.discord.delete_channel(MOD_LOG)
    await block(bot, "lighthouse")

    _, refused = await bot.command("imagine", {"prompt": "a lighthouse at dusk"})
    bot.replicate.fail_next()
    await bot.command("imagine", {"prompt": "a stormy sea"})
    await bot.command("imagine", {"prompt": "a calm sea"})

    assert REFUSAL in text_of(refused["data"])
    [post] = await bot.channel_posts()
    assert bot.discord.channel_messages[MOD_LOG] == []
    assert post["attachments"]


async def test_a_non_admin_cannot_set_the_mod_log(bot: RunningBot) -> None:
    _, reply = await bot.command(
        "imagine-admin settings mod-log", {"channel": MOD_LOG}, permissions=MEMBER_PERMISSIONS
    )

    assert "Manage Server" in text_of(reply["data"])
    _, shown = await bot.command("imagine-admin settings show")
    assert "Mod log off" in text_of(shown["data"])
