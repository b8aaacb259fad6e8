"""Allowed channels: where /imagine and the result buttons work, used through Discord."""

from __future__ import annotations

from tests.e2e.conftest import RunningBot
from tests.e2e.test_blocklist import credits_left_today
from tests.e2e.test_buttons import click, jobs, posted_result, text_of
from tests.e2e.test_settings import fields_of
from tests.fakes.fake_discord import DEFAULT_CHANNEL_ID, EPHEMERAL

MEMBER_PERMISSIONS = "0"  # no Manage Server
ART_CHANNEL = DEFAULT_CHANNEL_ID + 1_000
REFUSAL = "Images can't be made in this channel on this server."


async def allow(bot: RunningBot, channel_id: int) -> None:
    _, reply = await bot.command("imagine-admin channels add", {"channel": channel_id})
    assert "Channel added." in text_of(reply["data"])


async def test_imagine_elsewhere_is_refused_privately_and_names_the_allowed_channel(
    bot: RunningBot,
) -> None:
    await allow(bot, ART_CHANNEL)

    _, refused = await bot.command("imagine", {"prompt": "a fox"})

    message = refused["data"]
    assert REFUSAL in text_of(message)
    assert f"<#{ART_CHANNEL}>" in text_of(message)
    assert message["flags"] & EPHEMERAL
    assert bot.replicate.create_count == 0
    assert bot.job_states() == []
    assert (await credits_left_today(bot)).startswith("**10** of 10 left")


async def test_imagine_in_an_allowed_channel_works(bot: RunningBot) -> None:
    await allow(bot, ART_CHANNEL)

    await bot.command("imagine", {"prompt": "a fox"}, channel_id=ART_CHANNEL)

    [job] = jobs(bot.database)
    assert job["channel_id"] == ART_CHANNEL


async def test_imagine_works_in_every_channel_when_none_is_listed(bot: RunningBot) -> None:
    await bot.command("imagine", {"prompt": "a fox"})
    await bot.command("imagine", {"prompt": "a hare"}, channel_id=ART_CHANNEL)

    assert [job["channel_id"] for job in jobs(bot.database)] == [DEFAULT_CHANNEL_ID, ART_CHANNEL]


async def test_removing_the_last_channel_opens_every_channel_again(bot: RunningBot) -> None:
    await allow(bot, ART_CHANNEL)
    _, removed = await bot.command("imagine-admin channels remove", {"channel": ART_CHANNEL})
    assert "Channel removed." in text_of(removed["data"])

    await bot.command("imagine", {"prompt": "a fox"})

    assert len(jobs(bot.database)) == 1


async def test_a_result_button_in_a_channel_no_longer_allowed_is_refused(
    bot: RunningBot,
) -> None:
    message = await posted_result(bot)
    await allow(bot, ART_CHANNEL)

    _, reply = await click(bot, message, "Reroll")

    assert REFUSAL in text_of(reply)
    assert f"<#{ART_CHANNEL}>" in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert len(jobs(bot.database)) == 1


async def test_the_list_and_settings_show_name_the_allowed_channels(bot: RunningBot) -> None:
    await allow(bot, ART_CHANNEL)

    _, listing = await bot.command("imagine-admin channels list")
    _, shown = await bot.command("imagine-admin settings show")

    assert f"<#{ART_CHANNEL}>" in text_of(listing["data"])
    assert fields_of(shown)["Allowed channels"] == f"<#{ART_CHANNEL}>"


async def test_a_member_without_manage_server_cannot_add_or_remove_a_channel(
    bot: RunningBot,
) -> None:
    await allow(bot, ART_CHANNEL)

    for name, channel in (("add", DEFAULT_CHANNEL_ID), ("remove", ART_CHANNEL)):
        _, reply = await bot.command(
            f"imagine-admin channels {name}", {"channel": channel}, permissions=MEMBER_PERMISSIONS
        )
        assert "Manage Server" in text_of(reply["data"])

    _, listing = await bot.command("imagine-admin channels list")
    assert f"<#{ART_CHANNEL}>" in text_of(listing["data"])
    assert f"<#{DEFAULT_CHANNEL_ID}>" not in text_of(listing["data"])


async def test_adding_and_removing_channels_is_audited(bot: RunningBot) -> None:
    await allow(bot, ART_CHANNEL)
    await bot.command("imagine-admin channels remove", {"channel": ART_CHANNEL})

    _, audit = await bot.command("imagine-admin audit")

    trail = text_of(audit["data"])
    assert "**channels-add** channel_id=" in trail
    assert "**channels-remove** channel_id=" in trail
