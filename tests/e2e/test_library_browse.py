"""Browsing and searching the prompt library in Discord (issue 12): /prompts browse and
search, paging with Previous and Next, Like, and the options' autocomplete."""

from __future__ import annotations

import copy
from typing import Any

from tests.e2e.conftest import BotRunner, RunningBot
from tests.e2e.test_blocklist import text_of
from tests.e2e.test_buttons import buttons, click
from tests.e2e.test_library import OTHER_MEMBER, browse_message, library_files, member, shared
from tests.fakes.fake_discord import DEFAULT_USER_ID, EPHEMERAL

# Discord's interaction callback type that edits the message a component sat on.
UPDATE_MESSAGE = 7


def rows(message: dict[str, Any]) -> list[list[tuple[str, bool]]]:
    """Each row's buttons: (label, disabled)."""
    return [
        [(c["label"], bool(c.get("disabled"))) for c in row["components"]]
        for row in message["components"]
    ]


async def press(
    bot: RunningBot, message: dict[str, Any], label: str, **kwargs: Any
) -> dict[str, Any]:
    """Press a browse button that updates the browse message (its callback is Discord's
    UPDATE_MESSAGE); the message as updated."""
    clicked = await bot.discord.click_button(buttons(message)[label], message, **kwargs)
    callback = await clicked.wait_for_response()
    assert callback["type"] == UPDATE_MESSAGE, callback
    updated: dict[str, Any] = callback["message"]
    return updated


def like_label(message: dict[str, Any]) -> str:
    return next(label for label in buttons(message) if label.startswith("♥"))


async def test_browse_shows_an_entry_with_its_own_image_and_the_buttons(
    bot: RunningBot,
) -> None:
    entry_id = await shared(bot, "Stormy lighthouse", tags="sea night")

    page = await browse_message(bot, user_id=OTHER_MEMBER)

    assert page["flags"] & EPHEMERAL
    [embed] = page["embeds"]
    entry = await bot.application.library.entry(member(bot, OTHER_MEMBER), entry_id)
    attached = f"entry-{entry_id}{bot.application.library.files.path(entry.image_name).suffix}"
    assert embed["title"] == "Stormy lighthouse"
    assert embed["image"]["url"] == f"attachment://{attached}"
    assert [a["filename"] for a in page["attachments"]] == [attached]
    assert "Newest first** · 1 of 1" in embed["description"]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Shared by"] == f"<@{DEFAULT_USER_ID}>"
    assert fields["Likes and uses"] == "♥ 0 · used 0 times"
    assert fields["Tags"] == "#sea #night"
    assert fields["Options"].startswith("Imagen 4 Fast · 1:1")
    assert rows(page) == [
        [("Previous", True), ("Next", True), ("♥ Like · 0", False)],
        [("Use", False), ("Edit & use", False), ("Report", False)],
    ]


async def test_browsing_an_empty_library_says_how_to_share(bot: RunningBot) -> None:
    _, reply = await bot.command("prompts browse")

    assert "Nothing has been shared on this server yet." in text_of(reply["data"])
    assert reply["data"]["flags"] & EPHEMERAL


async def test_browse_by_tag_shows_only_entries_with_it(bot: RunningBot) -> None:
    await shared(bot, "A sea", tags="sea")
    await shared(bot, "A forest", tags="forest")

    page = await browse_message(bot, options={"tag": "#Forest"})

    assert page["embeds"][0]["title"] == "A forest"
    assert "1 of 1" in page["embeds"][0]["description"]


async def test_search_finds_an_entry_by_its_title(bot: RunningBot) -> None:
    await shared(bot, "Copper dragon")
    await shared(bot, "Quiet harbour")

    _, reply = await bot.command("prompts search", {"query": "harbour"})

    [embed] = reply["data"]["embeds"]
    assert embed["title"] == "Quiet harbour"
    assert "Best matches for “harbour”** · 1 of 1" in embed["description"]


async def test_a_search_matching_nothing_says_so(bot: RunningBot) -> None:
    await shared(bot, "Copper dragon")

    _, reply = await bot.command("prompts search", {"query": "submarine"})

    assert "No shared prompts match that." in text_of(reply["data"])


async def test_next_and_previous_page_through_a_browse_in_its_own_message(
    bot: RunningBot,
) -> None:
    for title in ("First", "Second", "Third"):
        await shared(bot, title)
    page = await browse_message(bot)
    assert page["embeds"][0]["title"] == "Third"

    second = await press(bot, page, "Next")
    assert second["embeds"][0]["title"] == "Second"
    assert "2 of 3" in second["embeds"][0]["description"]
    assert rows(second)[0][:2] == [("Previous", False), ("Next", False)]
    first = await press(bot, second, "Next")
    assert first["embeds"][0]["title"] == "First"
    assert rows(first)[0][1] == ("Next", True)
    back = await press(bot, first, "Previous")
    assert back["embeds"][0]["title"] == "Second"
    [attachment] = back["attachments"]
    assert back["embeds"][0]["image"]["url"] == f"attachment://{attachment['filename']}"


async def test_paging_stays_stable_while_a_new_entry_is_shared(bot: RunningBot) -> None:
    await shared(bot, "Older")
    await shared(bot, "Newer")
    page = await browse_message(bot)

    await shared(bot, "Shared meanwhile", user_id=OTHER_MEMBER)
    following = await press(bot, page, "Next")

    assert following["embeds"][0]["title"] == "Older"
    assert "2 of 2" in following["embeds"][0]["description"]


async def test_like_toggles_and_the_count_shows(bot: RunningBot) -> None:
    entry_id = await shared(bot)
    page = await browse_message(bot, user_id=OTHER_MEMBER)

    liked = await press(bot, page, "♥ Like · 0", user_id=OTHER_MEMBER)
    assert like_label(liked) == "♥ Like · 1"
    assert "♥ 1 · used 0 times" in text_of(liked)
    unliked = await press(bot, liked, "♥ Like · 1", user_id=OTHER_MEMBER)

    assert like_label(unliked) == "♥ Like · 0"
    entry = await bot.application.library.entry(member(bot, OTHER_MEMBER), entry_id)
    assert entry.likes == 0


async def test_a_forged_browse_position_is_refused_in_words(bot: RunningBot) -> None:
    await shared(bot)
    page = copy.deepcopy(await browse_message(bot))
    forged = "library:next:1:99999999"
    page["components"][0]["components"][1]["custom_id"] = forged

    clicked = await bot.discord.click_button(forged, page)
    callback = await clicked.wait_for_response()

    assert "I do not know that button" in text_of(callback["data"])
    assert callback["data"]["flags"] & EPHEMERAL
    assert len(library_files(bot)) == 2


async def test_the_prompts_commands_only_work_in_a_server(bot: RunningBot) -> None:
    [prompts] = [c for c in bot.discord.commands if c["name"] == "prompts"]

    assert prompts["contexts"] == [0]
    assert {option["name"] for option in prompts["options"]} == {
        "share",
        "browse",
        "search",
        "mine",
        "delete",
        "forget-me",
    }


async def test_a_browse_button_works_after_the_bot_restarts(runner: BotRunner) -> None:
    async with runner.run() as bot:
        await shared(bot)
        page = await browse_message(bot, user_id=OTHER_MEMBER)

    async with runner.run() as restarted:
        _, queued = await click(restarted, page, "Use", user_id=OTHER_MEMBER)

        assert queued["embeds"][0]["title"] == "Queued"


# ------------------------------------------------------------------------- autocomplete


async def test_share_autocomplete_offers_only_the_members_finished_jobs(bot: RunningBot) -> None:
    await bot.command("imagine", {"prompt": "someone else's harbour"}, user_id=OTHER_MEMBER)
    await bot.command("imagine", {"prompt": "a quiet harbour " + "at night " * 20})
    await bot.command("imagine", {"prompt": "a copper dragon"})
    await bot.discord.wait_for_channel_message(count=3)

    offered = await bot.discord.autocomplete("prompts share", focused="job")
    typed = await bot.discord.autocomplete("prompts share", {"job": "harb"}, focused="job")

    assert [choice["value"] for choice in offered] == [3, 2]
    assert offered[0]["name"] == "#3 · a copper dragon"
    assert [choice["value"] for choice in typed] == [2]
    assert len(typed[0]["name"]) <= 100


async def test_tag_autocomplete_offers_the_servers_tags_by_what_was_typed(
    bot: RunningBot,
) -> None:
    await shared(bot, "A sea", tags="sea seaside")
    await shared(bot, "More sea", tags="sea")
    await shared(bot, "A forest", tags="forest")

    offered = await bot.discord.autocomplete("prompts browse", {"tag": "#Se"}, focused="tag")
    searched = await bot.discord.autocomplete("prompts search", {"tag": "fo"}, focused="tag")

    assert [(c["name"], c["value"]) for c in offered] == [("#sea", "sea"), ("#seaside", "seaside")]
    assert [c["value"] for c in searched] == ["forest"]


async def test_delete_autocomplete_offers_only_the_members_own_entries(bot: RunningBot) -> None:
    mine = await shared(bot, "Mine")
    await shared(bot, "Theirs", user_id=OTHER_MEMBER)

    offered = await bot.discord.autocomplete("prompts delete", focused="entry")

    assert offered == [{"name": f"#{mine} · Mine", "value": mine}]


async def test_every_browse_button_answers_within_three_seconds(bot: RunningBot) -> None:
    await shared(bot, "First")
    await shared(bot, "Second")
    page = await browse_message(bot, user_id=OTHER_MEMBER)

    delays = []
    for label in ("Next", "♥ Like · 0", "Use", "Edit & use", "Report"):
        clicked = await bot.discord.click_button(buttons(page)[label], page, user_id=OTHER_MEMBER)
        await clicked.wait_for_response()
        delays.append(clicked.response_delay)

    assert all(delay is not None and delay < 3.0 for delay in delays)
