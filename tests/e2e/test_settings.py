"""Server defaults, the safety floor and members' own defaults, used through Discord."""

from __future__ import annotations

from typing import Any

from bot.publisher import PRIVATE_NOTE
from tests.e2e.conftest import RunningBot, eventually
from tests.e2e.test_buttons import click, jobs, posted_result
from tests.e2e.test_quotas import text_of
from tests.fakes.fake_discord import DEFAULT_USER_ID, EPHEMERAL

MEMBER_PERMISSIONS = "0"  # no Manage Server
OTHER_MEMBER = DEFAULT_USER_ID + 1
STRICT, LENIENT = "block_low_and_above", "block_only_high"
FLOOR_NOTE = "This server's safety floor is Strict: your image is made at Strict."


def fields_of(reply: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in reply["data"]["embeds"][0].get("fields", [])}


async def sent_inputs(bot: RunningBot, count: int) -> list[dict[str, Any]]:
    """What the fake Replicate received for each prediction, oldest first."""
    await eventually(lambda: len(bot.replicate.predictions) >= count)
    predictions = sorted(bot.replicate.predictions.values(), key=lambda p: p.created)
    return [prediction.input for prediction in predictions]


async def test_a_lenient_request_under_a_strict_floor_runs_strict_and_says_so(
    bot: RunningBot,
) -> None:
    await bot.command("imagine-admin settings safety-floor", {"level": STRICT})

    _, reply = await bot.command("imagine", {"prompt": "a fox", "safety": LENIENT})

    [sent] = await sent_inputs(bot, 1)
    assert sent["safety_filter_level"] == STRICT
    assert fields_of(reply)["Safety floor"] == FLOOR_NOTE
    assert reply["data"]["flags"] & EPHEMERAL


async def test_a_request_stricter_than_the_floor_is_untouched(bot: RunningBot) -> None:
    await bot.command("imagine-admin settings safety-floor", {"level": "block_medium_and_above"})

    _, reply = await bot.command("imagine", {"prompt": "a fox", "safety": STRICT})

    [sent] = await sent_inputs(bot, 1)
    assert sent["safety_filter_level"] == STRICT
    assert "Safety floor" not in fields_of(reply)


async def test_a_members_settings_default_applies(bot: RunningBot) -> None:
    _, saved = await bot.command("settings", {"aspect_ratio": "16:9", "output_format": "png"})
    assert "Your defaults are saved." in saved["data"]["content"]

    await bot.command("imagine", {"prompt": "a fox"})

    [sent] = await sent_inputs(bot, 1)
    assert (sent["aspect_ratio"], sent["output_format"]) == ("16:9", "png")


async def test_an_explicit_option_beats_the_members_default(bot: RunningBot) -> None:
    await bot.command("settings", {"aspect_ratio": "16:9"})

    await bot.command("imagine", {"prompt": "a fox", "aspect_ratio": "9:16"})

    [sent] = await sent_inputs(bot, 1)
    assert sent["aspect_ratio"] == "9:16"


async def test_a_server_default_applies_when_the_member_has_none(bot: RunningBot) -> None:
    await bot.command("imagine-admin settings defaults", {"tier": "ultra", "aspect_ratio": "4:3"})
    await bot.command("settings", {"aspect_ratio": "1:1"})  # the default member's own

    await bot.command("imagine", {"prompt": "a fox"}, user_id=OTHER_MEMBER)
    await bot.command("imagine", {"prompt": "a hare"})

    [theirs, mine] = jobs(bot.database)
    assert (theirs["tier"], theirs["aspect_ratio"]) == ("ultra", "4:3")
    assert (mine["tier"], mine["aspect_ratio"]) == ("ultra", "1:1")


async def test_settings_show_where_each_default_comes_from(bot: RunningBot) -> None:
    await bot.command("imagine-admin settings defaults", {"tier": "standard"})
    await bot.command("imagine-admin settings safety-floor", {"level": STRICT})
    await bot.command("settings", {"safety": LENIENT})

    _, shown = await bot.command("settings")

    fields = fields_of(shown)
    assert fields["Tier"] == "Standard (server default)"
    assert fields["Aspect ratio"] == "1:1 (bot default)"
    assert fields["Safety"] == "Lenient (yours); this server's floor makes it Strict"


async def test_clearing_a_members_default_brings_back_the_servers(bot: RunningBot) -> None:
    await bot.command("imagine-admin settings defaults", {"tier": "standard"})
    await bot.command("settings", {"tier": "ultra"})

    _, cleared = await bot.command("settings", {"tier": "clear"})

    assert fields_of(cleared)["Tier"] == "Standard (server default)"


async def test_admin_settings_show_has_the_floor_the_defaults_and_the_quotas(
    bot: RunningBot,
) -> None:
    await bot.command("imagine-admin settings safety-floor", {"level": STRICT})
    await bot.command("imagine-admin settings defaults", {"aspect_ratio": "16:9"})

    _, shown = await bot.command("imagine-admin settings show")

    fields = fields_of(shown)
    assert fields["Safety floor"] == "Strict (nothing more lenient)"
    assert fields["Server defaults"] == "Tier: not set · Aspect ratio: 16:9"
    assert "10 a day" in fields["Per member (default)"]


async def test_a_non_admin_cannot_change_any_server_setting(bot: RunningBot) -> None:
    for name, options in (
        ("imagine-admin settings safety-floor", {"level": STRICT}),
        ("imagine-admin settings defaults", {"tier": "ultra"}),
        ("imagine-admin settings results", {"visibility": "private"}),
        ("imagine-admin settings show", {}),
    ):
        _, reply = await bot.command(name, options, permissions=MEMBER_PERMISSIONS)
        assert "Manage Server" in text_of(reply)

    _, shown = await bot.command("imagine-admin settings show")
    fields = fields_of(shown)
    assert (fields["Safety floor"], fields["Server defaults"]) == (
        "none",
        "Tier: not set · Aspect ratio: not set",
    )
    _, audit = await bot.command("imagine-admin audit")
    assert audit["data"]["embeds"][0]["description"] == "No changes yet."


async def test_a_reroll_of_a_lenient_result_under_a_new_strict_floor_runs_strict(
    bot: RunningBot,
) -> None:
    message = await posted_result(bot, {"prompt": "a lighthouse", "safety": LENIENT})
    await bot.command("imagine-admin settings safety-floor", {"level": STRICT})

    _, reply = await click(bot, message, "Reroll")

    first, rerolled = await sent_inputs(bot, 2)
    assert (first["safety_filter_level"], rerolled["safety_filter_level"]) == (LENIENT, STRICT)
    assert {f["name"]: f["value"] for f in reply["embeds"][0]["fields"]}["Safety floor"] == (
        FLOOR_NOTE
    )


async def test_private_results_go_to_the_requester_alone_and_never_to_the_channel(
    bot: RunningBot,
) -> None:
    await bot.command("imagine-admin settings results", {"visibility": "private"})
    interaction, _ = await bot.command("imagine", {"prompt": "a lighthouse at dusk"})

    await eventually(lambda: bot.job_states() == ["delivered"])

    shown = [r for r in interaction.responses if r["kind"] == "edit" and r["attachments"]]
    assert len(shown) == 1
    assert shown[0]["message"]["flags"] & EPHEMERAL
    assert shown[0]["content"] == PRIVATE_NOTE
    assert bot.discord.channel_messages[bot.discord.channel_id] == []


async def test_results_are_public_again_once_the_setting_is_lifted(bot: RunningBot) -> None:
    await bot.command("imagine-admin settings results", {"visibility": "private"})
    await bot.command("imagine-admin settings results", {"visibility": "public"})

    await bot.command("imagine", {"prompt": "a lighthouse at dusk"})

    [post] = await bot.channel_posts()
    assert len(post["attachments"]) == 1
