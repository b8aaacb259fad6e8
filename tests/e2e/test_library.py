"""The prompt library in Discord (issue 12), shared and used through the fake Discord: Share
under a result and /prompts share, Use and Edit & use charged to the clicker, Report, and a
member's own data (/prompts mine, delete, forget-me). Browsing and searching are in
test_library_browse.py."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bot.core.domain import Member
from tests.e2e.conftest import BotRunner, RunningBot, eventually, shown_reply
from tests.e2e.test_blocklist import block, text_of
from tests.e2e.test_buttons import buttons, click, credits_left_today, jobs, posted_result
from tests.e2e.test_mod_log import MOD_LOG, reports, set_mod_log
from tests.fakes.fake_discord import DEFAULT_USER_ID, EPHEMERAL, MODAL, FakeInteraction

OTHER_MEMBER = DEFAULT_USER_ID + 1
LIGHTHOUSE: dict[str, object] = {"prompt": "a lighthouse at dusk over a stormy sea"}


def library_files(bot: RunningBot) -> list[Path]:
    directory = bot.application.library.files.directory
    return sorted(directory.iterdir()) if directory.exists() else []


def same_bytes(one: Path, other: Path) -> bool:
    return one.read_bytes() == other.read_bytes()


def modal_inputs(callback: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A modal callback's text inputs by custom_id."""
    return {
        label["component"]["custom_id"]: label["component"]
        for label in callback["data"]["components"]
    }


async def open_form(
    bot: RunningBot, message: dict[str, Any], label: str, **kwargs: Any
) -> FakeInteraction:
    clicked = await bot.discord.click_button(buttons(message)[label], message, **kwargs)
    callback = await clicked.wait_for_response()
    assert callback["type"] == MODAL, callback
    return clicked


async def share_result(
    bot: RunningBot, result: dict[str, Any], title: str = "Stormy lighthouse", tags: str = ""
) -> dict[str, Any]:
    """Press Share under a result and submit the form; the reply the member sees."""
    opened = await open_form(bot, result, "Share")
    submitted = await bot.discord.submit_modal(opened, {"title": title, "tags": tags})
    return await shown_reply(submitted)


async def result_of(bot: RunningBot, user_id: int, options: dict[str, object]) -> Any:
    """The channel message showing the result of one /imagine by ``user_id``."""
    before = len(bot.discord.channel_messages[bot.discord.channel_id])
    await bot.command("imagine", options, user_id=user_id)
    posts = await bot.channel_posts(count=before + 1)
    return posts[before]["message"]


async def shared(
    bot: RunningBot,
    title: str = "Stormy lighthouse",
    *,
    tags: str = "",
    user_id: int = DEFAULT_USER_ID,
    **options: object,
) -> int:
    """Make an image as ``user_id`` and share it; the new entry's id."""
    result = await result_of(bot, user_id, {**LIGHTHOUSE, **options})
    opened = await open_form(bot, result, "Share", user_id=user_id)
    submitted = await bot.discord.submit_modal(opened, {"title": title, "tags": tags})
    reply = await shown_reply(submitted)
    assert "Shared as entry #" in text_of(reply), text_of(reply)
    return max(entry.id for entry in await bot.application.library.mine(member(bot, user_id)))


def member(bot: RunningBot, user_id: int = DEFAULT_USER_ID) -> Member:
    return Member(guild_id=bot.discord.guild_id, user_id=user_id, role_ids=frozenset())


async def browse_message(bot: RunningBot, **kwargs: Any) -> dict[str, Any]:
    """/prompts browse; the (ephemeral) message showing its first page."""
    _, reply = await bot.command("prompts browse", **kwargs)
    message: dict[str, Any] = reply["data"]
    return message


# ------------------------------------------------------------------------------ sharing


async def test_the_share_button_opens_a_form_with_a_title_from_the_prompt(bot: RunningBot) -> None:
    result = await posted_result(bot, LIGHTHOUSE)

    opened = await open_form(bot, result, "Share")

    inputs = modal_inputs(await opened.wait_for_response())
    assert inputs["title"]["value"] == "a lighthouse at dusk over a stormy sea"
    assert inputs["title"]["required"] is True
    assert inputs["tags"].get("required") is False


async def test_sharing_a_result_keeps_the_bots_own_copy_of_its_image(bot: RunningBot) -> None:
    result = await posted_result(bot, LIGHTHOUSE)

    reply = await share_result(bot, result, "Stormy lighthouse", "sea, Night #moody")

    [entry] = await bot.application.library.mine(member(bot))
    assert (entry.title, entry.tags) == ("Stormy lighthouse", ("sea", "night", "moody"))
    kept = bot.application.library.files.path(entry.image_name)
    [job] = jobs(bot.database)
    [made] = json.loads(job["image_paths"])
    assert same_bytes(kept, Path(made))
    assert kept.parent == bot.application.library.files.directory
    assert reply["flags"] & EPHEMERAL
    [embed] = reply["embeds"]
    assert embed["title"] == "Stormy lighthouse"
    assert "/prompts browse" in embed["description"]
    attached = f"entry-{entry.id}{kept.suffix}"
    assert embed["image"]["url"] == f"attachment://{attached}"
    assert [a["filename"] for a in reply["attachments"]] == [attached]


async def test_prompts_share_opens_the_form_for_one_of_the_members_jobs(bot: RunningBot) -> None:
    await posted_result(bot, LIGHTHOUSE)
    [job] = jobs(bot.database)

    opened = await bot.discord.invoke_slash_command("prompts share", {"job": job["id"]})
    assert (await opened.wait_for_response())["type"] == MODAL
    submitted = await bot.discord.submit_modal(opened, {"title": "From the command"})
    reply = await shown_reply(submitted)

    [entry] = await bot.application.library.mine(member(bot))
    assert entry.title == "From the command"
    assert entry.job_id == job["id"]
    assert "Shared as entry" in text_of(reply)


async def test_the_share_button_refuses_another_member(bot: RunningBot) -> None:
    result = await posted_result(bot, LIGHTHOUSE)

    _, reply = await click(bot, result, "Share", user_id=OTHER_MEMBER)

    assert "Only the member who asked for this image can share it." in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert await bot.application.library.mine(member(bot, OTHER_MEMBER)) == []


async def test_a_share_button_copied_onto_another_message_is_refused(bot: RunningBot) -> None:
    first = await posted_result(bot, LIGHTHOUSE)
    second = copy.deepcopy(await posted_result(bot, LIGHTHOUSE))
    second["components"][1]["components"][1]["custom_id"] = buttons(first)["Share"]

    clicked = await bot.discord.click_button(buttons(first)["Share"], second)
    reply = await shown_reply(clicked)

    assert "I no longer know that image" in text_of(reply)


async def test_prompts_share_refuses_another_members_job(bot: RunningBot) -> None:
    await posted_result(bot, LIGHTHOUSE)
    [job] = jobs(bot.database)

    _, reply = await bot.command("prompts share", {"job": job["id"]}, user_id=OTHER_MEMBER)

    assert "not one of your recent finished images" in text_of(reply["data"])
    assert reply["data"]["flags"] & EPHEMERAL


async def test_a_form_submitted_for_another_members_job_shares_nothing(bot: RunningBot) -> None:
    """The form's custom_id names a job; the core checks whose it is on submit."""
    await bot.command("imagine", LIGHTHOUSE, user_id=OTHER_MEMBER)
    await eventually(lambda: bot.job_states() == ["delivered"])
    mine = await posted_result(bot, LIGHTHOUSE)
    opened = await open_form(bot, mine, "Share")
    callback = opened.responses[0]
    callback["data"]["custom_id"] = "library:share:1"  # the other member's job

    submitted = await bot.discord.submit_modal(opened, {"title": "Not mine"})
    reply = await shown_reply(submitted)

    assert "You can only share images you made yourself" in text_of(reply)
    assert library_files(bot) == []


async def test_a_blocklisted_title_is_refused_and_nothing_is_kept(bot: RunningBot) -> None:
    await block(bot, "forbidden")
    result = await posted_result(bot, LIGHTHOUSE)

    reply = await share_result(bot, result, "A forbidden lighthouse")

    assert "Your title or tags use a word this server does not allow." in text_of(reply)
    assert await bot.application.library.mine(member(bot)) == []
    assert library_files(bot) == []


async def test_a_member_barred_from_sharing_is_refused(bot: RunningBot) -> None:
    await bot.application.library.set_barred(bot.discord.guild_id, 1, DEFAULT_USER_ID, True)
    result = await posted_result(bot, LIGHTHOUSE)

    reply = await share_result(bot, result)

    assert "stopped you from sharing prompts here" in text_of(reply)
    assert await bot.application.library.mine(member(bot)) == []


async def test_sharing_the_same_image_twice_is_refused(bot: RunningBot) -> None:
    result = await posted_result(bot, LIGHTHOUSE)
    await share_result(bot, result)

    reply = await share_result(bot, result, "Again")

    assert "You already shared that image" in text_of(reply)


async def test_a_share_form_opened_before_a_restart_is_shared_after_it(runner: BotRunner) -> None:
    async with runner.run() as bot:
        result = await posted_result(bot, LIGHTHOUSE)
        opened = await open_form(bot, result, "Share")

    async with runner.run() as restarted:
        submitted = await restarted.discord.submit_modal(opened, {"title": "After"})
        reply = await shown_reply(submitted)

        assert "Shared as entry #1" in text_of(reply)


# ------------------------------------------------------------------------ Use, Edit & use


async def test_use_queues_the_entry_for_the_clicker_and_charges_them(bot: RunningBot) -> None:
    entry_id = await shared(bot, "Stormy lighthouse")
    page = await browse_message(bot, user_id=OTHER_MEMBER)

    _, queued = await click(bot, page, "Use", user_id=OTHER_MEMBER)

    assert queued["embeds"][0]["title"] == "Queued"
    assert queued["flags"] & EPHEMERAL
    posts = await bot.channel_posts(count=2)
    remix = posts[1]["message"]
    assert f"Remix of “Stormy lighthouse” by <@{DEFAULT_USER_ID}>" in text_of(remix)
    _, made = jobs(bot.database)
    assert (made["user_id"], made["prompt"]) == (OTHER_MEMBER, LIGHTHOUSE["prompt"])
    assert (await credits_left_today(bot, OTHER_MEMBER)).startswith("**9** of 10 left")
    assert (await credits_left_today(bot, DEFAULT_USER_ID)).startswith("**9** of 10 left")
    used = await bot.application.library.entry(member(bot), entry_id)
    assert used.uses == 1


async def test_edit_and_use_queues_the_changed_prompt(bot: RunningBot) -> None:
    await shared(bot)
    page = await browse_message(bot, user_id=OTHER_MEMBER)
    opened = await open_form(bot, page, "Edit & use", user_id=OTHER_MEMBER)
    assert modal_inputs(opened.responses[0])["prompt"]["value"] == LIGHTHOUSE["prompt"]

    submitted = await bot.discord.submit_modal(opened, {"prompt": "a lighthouse at dawn"})
    reply = await shown_reply(submitted)

    assert reply["embeds"][0]["title"] == "Queued"
    _, made = jobs(bot.database)
    assert (made["user_id"], made["prompt"]) == (OTHER_MEMBER, "a lighthouse at dawn")


async def test_using_a_hidden_entry_is_refused(bot: RunningBot) -> None:
    entry_id = await shared(bot)
    page = await browse_message(bot, user_id=OTHER_MEMBER)
    await bot.application.library.set_hidden(bot.discord.guild_id, 1, entry_id, True)

    _, reply = await click(bot, page, "Use", user_id=OTHER_MEMBER)

    assert "no longer in this server's library" in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert len(jobs(bot.database)) == 1


async def test_a_malformed_library_button_is_refused_in_words(bot: RunningBot) -> None:
    await shared(bot)
    page = copy.deepcopy(await browse_message(bot))
    forged = "library:use:\uff11\uff12"  # full-width digits, which int() would read
    page["components"][1]["components"][0]["custom_id"] = forged

    clicked = await bot.discord.click_button(forged, page)
    reply = await shown_reply(clicked)

    assert "I do not know that button" in text_of(reply)
    assert len(jobs(bot.database)) == 1


# ------------------------------------------------------------------------------ Report


async def test_a_report_reaches_the_mod_log(bot: RunningBot) -> None:
    await set_mod_log(bot)
    entry_id = await shared(bot, "Stormy lighthouse")
    page = await browse_message(bot, user_id=OTHER_MEMBER)
    opened = await open_form(bot, page, "Report", user_id=OTHER_MEMBER)

    submitted = await bot.discord.submit_modal(opened, {"reason": "copied from my post"})
    reply = await shown_reply(submitted)

    assert "Thanks, the moderators have been told." in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    [report] = await reports(bot)
    shown = text_of(report)
    assert f"#{entry_id}" in shown
    assert "copied from my post" in shown
    assert report["allowed_mentions"]["parse"] == []
    assert bot.discord.channel_messages[MOD_LOG] == [report]


# ---------------------------------------------------------------------------- own data


async def test_mine_lists_the_members_entries_and_deletes_one_with_its_files(
    bot: RunningBot,
) -> None:
    entry_id = await shared(bot, "Stormy lighthouse")
    assert len(library_files(bot)) == 2  # the image and its thumbnail

    _, listed = await bot.command("prompts mine")
    message = listed["data"]
    assert "Stormy lighthouse" in text_of(message)
    _, reply = await click(bot, message, f"Delete #{entry_id}")

    assert "Deleted your shared prompt" in text_of(reply)
    assert await bot.application.library.mine(member(bot)) == []
    assert library_files(bot) == []


async def test_prompts_delete_refuses_another_members_entry(bot: RunningBot) -> None:
    entry_id = await shared(bot)

    _, reply = await bot.command("prompts delete", {"entry": entry_id}, user_id=OTHER_MEMBER)

    assert "That is not one of your shared prompts." in text_of(reply["data"])
    assert len(await bot.application.library.mine(member(bot))) == 1


async def test_forget_me_asks_first_then_removes_entries_likes_and_files(
    bot: RunningBot,
) -> None:
    mine = await shared(bot, "Mine")
    theirs = await shared(bot, "Theirs", user_id=OTHER_MEMBER)
    await bot.application.library.like(member(bot), theirs)
    await bot.application.library.like(member(bot, OTHER_MEMBER), mine)
    asked, _ = await bot.command("prompts forget-me")
    question = await shown_reply(asked)
    assert question["flags"] & EPHEMERAL
    assert await bot.application.library.mine(member(bot)) != []  # nothing gone before Confirm

    _, reply = await click(bot, question, "Confirm: remove all my shared prompts and likes")

    assert "Removed 1 shared prompt with its image, and 1 like" in text_of(reply)
    assert await bot.application.library.mine(member(bot)) == []
    left = await bot.application.library.entry(member(bot, OTHER_MEMBER), theirs)
    assert left.likes == 0
    kept = {left.image_name, left.thumbnail_name}
    assert {path.name for path in library_files(bot)} == kept
