"""Moderating the prompt library through the fake Discord: /imagine-admin library … and the
web gallery's switch, who may use them, and what each change takes with it."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from bot.core.errors import InvalidRequest
from tests.e2e.conftest import BotRunner, RunningBot, eventually
from tests.e2e.test_blocklist import text_of
from tests.e2e.test_library import OTHER_MEMBER, library_files, member, shared
from tests.e2e.test_mod_log import MEMBER_PERMISSIONS, MOD_LOG


def audit_actions(bot: RunningBot) -> list[str]:
    with contextlib.closing(sqlite3.connect(bot.database)) as connection:
        return [row[0] for row in connection.execute("SELECT action FROM admin_audit")]


async def admin(bot: RunningBot, command: str, options: dict[str, object] | None = None) -> str:
    _, reply = await bot.command(f"imagine-admin {command}", options)
    return text_of(reply.get("data") or {})


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("library hide", {"entry": 1}),
        ("library delete", {"entry": 1}),
        ("library reports", None),
        ("library channel", None),
        ("settings gallery", {"state": "on"}),
    ],
)
async def test_a_member_without_manage_server_is_refused(
    bot: RunningBot, command: str, options: dict[str, object] | None
) -> None:
    entry_id = await shared(bot)

    _, reply = await bot.command(
        f"imagine-admin {command}", options, permissions=MEMBER_PERMISSIONS
    )

    assert "Manage Server" in text_of(reply["data"])
    assert (await bot.application.library.entry(member(bot), entry_id)).hidden is False


async def test_hiding_takes_an_entry_from_members_and_showing_brings_it_back(
    bot: RunningBot,
) -> None:
    entry_id = await shared(bot)

    await admin(bot, "library hide", {"entry": entry_id})
    with pytest.raises(InvalidRequest):
        await bot.application.library.entry(member(bot, OTHER_MEMBER), entry_id)
    await admin(bot, "library show", {"entry": entry_id})

    shown = await bot.application.library.entry(member(bot, OTHER_MEMBER), entry_id)
    assert shown.id == entry_id
    assert audit_actions(bot)[-2:] == ["library-hide", "library-show"]


async def test_deleting_an_entry_removes_its_files(bot: RunningBot) -> None:
    entry_id = await shared(bot)
    assert len(library_files(bot)) == 2

    await admin(bot, "library delete", {"entry": entry_id})

    assert library_files(bot) == []
    assert "library-delete" in audit_actions(bot)


async def test_a_barred_member_cannot_share_until_unbarred(bot: RunningBot) -> None:
    await admin(bot, "library bar", {"member": OTHER_MEMBER})
    with pytest.raises(AssertionError, match="stopped you from sharing"):
        await shared(bot, user_id=OTHER_MEMBER)

    await admin(bot, "library unbar", {"member": OTHER_MEMBER})

    assert await shared(bot, "Second try", user_id=OTHER_MEMBER)


async def test_reports_lists_a_reported_entry_with_its_reason_escaped(bot: RunningBot) -> None:
    entry_id = await shared(bot)
    await bot.application.library.report(member(bot, OTHER_MEMBER), entry_id, "**spam**")

    _, reply = await bot.command("imagine-admin library reports")

    [embed] = reply["data"]["embeds"]
    [field] = embed["fields"]
    assert field["name"].startswith(f"#{entry_id} ")
    assert "\\*\\*spam\\*\\*" in field["value"]


async def test_a_new_entry_is_posted_in_the_gallery_channel_and_removed_with_it(
    bot: RunningBot,
) -> None:
    await admin(bot, "library channel", {"channel": MOD_LOG})
    entry_id = await shared(bot)

    await eventually(lambda: bool(bot.discord.channel_messages[MOD_LOG]))
    [post] = bot.discord.channel_messages[MOD_LOG]
    assert post["message"]["attachments"][0]["filename"].startswith(f"entry-{entry_id}")
    assert post["allowed_mentions"] == {"parse": []}
    await admin(bot, "library delete", {"entry": entry_id})

    assert int(post["message"]["id"]) in bot.discord.deleted_message_ids


async def test_a_gallery_channel_closed_to_the_bot_does_not_stop_a_share(bot: RunningBot) -> None:
    await admin(bot, "library channel", {"channel": MOD_LOG})
    bot.discord.forbid_channel(MOD_LOG)

    entry_id = await shared(bot)

    assert (await bot.application.library.entry(member(bot), entry_id)).gallery_message_id is None


async def test_the_web_gallery_cannot_be_turned_on_while_the_operator_has_it_off(
    bot: RunningBot,
) -> None:
    text = await admin(bot, "settings gallery", {"state": "on"})

    assert "switched off for this bot" in text
    assert await bot.application.library.web_settings(bot.discord.guild_id) is None


async def test_the_web_gallery_turns_on_and_off_for_a_server(runner: BotRunner) -> None:
    async with runner.run(gallery={"enabled": True}) as bot:
        text = await admin(bot, "settings gallery", {"state": "on"})
        assert f"/gallery/{bot.discord.guild_id}" in text
        assert await bot.application.library.web_settings(bot.discord.guild_id) is not None

        await admin(bot, "settings gallery", {"state": "off"})

        assert await bot.application.library.web_settings(bot.discord.guild_id) is None


async def test_forgetting_someone_still_a_member_is_refused_and_keeps_their_entries(
    bot: RunningBot,
) -> None:
    entry_id = await shared(bot, user_id=OTHER_MEMBER)

    text = await admin(bot, "library forget", {"member": OTHER_MEMBER})

    assert "/prompts forget-me" in text
    assert (await bot.application.library.entry(member(bot), entry_id)).id == entry_id
    assert len(library_files(bot)) == 2
