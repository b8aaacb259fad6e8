"""Quotas, the queue and admin commands, used through Discord as members and admins do."""

from __future__ import annotations

import copy
import csv
import io

from tests.e2e.conftest import BotRunner, RunningBot, eventually
from tests.fakes.fake_discord import DEFAULT_USER_ID, EPHEMERAL

OTHER_MEMBER = DEFAULT_USER_ID + 1
NOT_A_MEMBER = DEFAULT_USER_ID + 2
BOOSTER_ROLE = 1_555_555_555_555_555_555
MEMBER_PERMISSIONS = "0"  # no Manage Server
MANAGE_GUILD = 1 << 5


def text_of(reply: dict[str, object]) -> str:
    """Content and embed descriptions of a reply, for matching messages."""
    data = reply["data"]
    assert isinstance(data, dict)
    embeds = data.get("embeds") or []
    return " ".join([data.get("content") or "", *(e.get("description", "") for e in embeds)])


async def test_admin_commands_are_for_server_managers_only(bot: RunningBot) -> None:
    [admin] = [c for c in bot.discord.commands if c["name"] == "imagine-admin"]

    assert int(admin["default_member_permissions"]) == MANAGE_GUILD
    assert admin["contexts"] == [0]


async def test_a_member_without_manage_server_is_refused(bot: RunningBot) -> None:
    _, reply = await bot.command(
        "imagine-admin default-limit", {"daily": 0}, permissions=MEMBER_PERMISSIONS
    )

    assert "Manage Server" in text_of(reply)
    _, shown = await bot.command("imagine-admin show")
    assert "10 a day" in str(shown["data"]["embeds"][0]["fields"])


async def test_an_admin_limit_stops_the_next_image(bot: RunningBot) -> None:
    _, updated = await bot.command("imagine-admin default-limit", {"daily": 1})
    assert "Default limits updated." in text_of(updated)
    await bot.command("imagine", {"prompt": "a red fox"})

    _, refused = await bot.command("imagine", {"prompt": "a blue fox"})

    message = text_of(refused)
    assert "you have 0 of your 1 daily credits left" in message
    assert "<t:" in message  # the reset, in the member's own time zone
    assert refused["data"]["flags"] & EPHEMERAL


async def test_quota_shows_what_is_left_and_the_prices(bot: RunningBot) -> None:
    await bot.command("imagine", {"prompt": "a red fox", "tier": "ultra"})

    _, reply = await bot.command("quota")

    fields = {f["name"]: f["value"] for f in reply["data"]["embeds"][0]["fields"]}
    assert fields["Today"].startswith("**7** of 10 left")
    assert "Ultra: 3 credit(s) per image" in fields["Prices"]


async def test_queue_cancel_button_refunds_a_waiting_job(bot: RunningBot) -> None:
    bot.replicate.processing_seconds = 30
    await bot.command("imagine-admin queue-limits", {"running": 1})
    await bot.command("imagine", {"prompt": "first"})
    await bot.command("imagine", {"prompt": "second"})

    _, listing = await bot.command("queue")
    message = listing["message"]
    buttons = [c["custom_id"] for row in message["components"] for c in row["components"]]
    clicked = await bot.discord.click_button(buttons[-1], message)
    reply = await clicked.wait_for_response()

    assert "canceled. 1 credit(s) given back." in text_of(reply)
    _, quota = await bot.command("quota")
    today = {f["name"]: f["value"] for f in quota["data"]["embeds"][0]["fields"]}["Today"]
    assert today.startswith("**9** of 10 left")


async def test_a_member_cannot_cancel_someone_elses_job(bot: RunningBot) -> None:
    bot.replicate.processing_seconds = 30
    await bot.command("imagine", {"prompt": "mine"})
    _, listing = await bot.command("queue")
    message = listing["message"]
    [button] = [c["custom_id"] for row in message["components"] for c in row["components"]]

    clicked = await bot.discord.click_button(button, message, user_id=OTHER_MEMBER)
    reply = await clicked.wait_for_response()

    assert "not one of yours" in text_of(reply)


async def test_a_cancel_button_naming_a_job_that_cannot_exist_gets_the_same_clear_answer(
    bot: RunningBot,
) -> None:
    bot.replicate.processing_seconds = 30
    await bot.command("imagine", {"prompt": "mine"})
    _, listing = await bot.command("queue")
    message = copy.deepcopy(listing["message"])
    forged = "imagine:cancel:" + "9" * 30  # past SQLite's integer range
    message["components"][0]["components"][0]["custom_id"] = forged

    clicked = await bot.discord.click_button(forged, message)
    reply = await clicked.wait_for_response()

    assert "not one of yours" in text_of(reply)


async def test_granting_credits_to_someone_outside_the_server_is_refused(
    bot: RunningBot,
) -> None:
    bot.discord.non_members.add(NOT_A_MEMBER)

    _, reply = await bot.command("imagine-admin grant", {"member": NOT_A_MEMBER, "credits": 5})

    assert "is not a member of this server" in text_of(reply)
    _, audit = await bot.command("imagine-admin audit")
    assert "No changes yet." in text_of(audit)


async def test_every_admin_change_shows_in_the_audit(bot: RunningBot) -> None:
    await bot.command("imagine-admin grant", {"member": OTHER_MEMBER, "credits": 5})

    _, audit = await bot.command("imagine-admin audit")

    line = text_of(audit)
    assert f"<@{DEFAULT_USER_ID}> **grant** user_id={OTHER_MEMBER}, credits=5" in line


async def test_usage_report_comes_with_a_csv(bot: RunningBot) -> None:
    await bot.command("imagine", {"prompt": "a red fox", "tier": "standard"})
    await bot.channel_posts()
    await eventually(lambda: bot.job_states() == ["delivered"])

    _, reply = await bot.command("imagine-admin usage", {"period": "month"})

    [attachment] = reply["attachments"]
    rows = list(csv.reader(io.StringIO(attachment["data"].decode())))
    assert rows[0][:5] == ["job_id", "user_id", "tier", "state", "credits"]
    assert rows[1][1:6] == [str(DEFAULT_USER_ID), "standard", "delivered", "2", "committed"]


async def test_a_tier_restricted_to_a_role_opens_when_the_member_gets_it(
    runner: BotRunner,
) -> None:
    runner.discord.roles[BOOSTER_ROLE] = "Booster"
    async with runner.run() as bot:
        await bot.command("imagine-admin tier-roles", {"tier": "ultra", "role": BOOSTER_ROLE})

        _, refused = await bot.command("imagine", {"prompt": "a red fox", "tier": "ultra"})
        bot.discord.member_roles[DEFAULT_USER_ID].append(BOOSTER_ROLE)
        _, accepted = await bot.command("imagine", {"prompt": "a red fox", "tier": "ultra"})

    assert "open only to members with certain roles" in text_of(refused)
    assert accepted["data"]["embeds"][0]["title"] == "Queued"


async def test_a_restart_mid_job_posts_the_image_once(runner: BotRunner) -> None:
    runner.replicate.processing_seconds = 1.0
    runner.replicate.webhook_retry_delays = (0.5, 1.0, 2.0, 4.0)  # Replicate retries ~1 min
    async with runner.run() as bot:
        await bot.command("imagine", {"prompt": "a lighthouse"})
        await eventually(lambda: runner.replicate.create_count == 1)
        await bot.application.jobs.stop()  # the job is at the provider when the bot goes down

    async with runner.run() as bot:
        [post] = await bot.channel_posts()
        assert len(post["attachments"]) == 1

    assert runner.replicate.create_count == 1
    assert len(runner.discord.channel_messages[runner.discord.channel_id]) == 1
