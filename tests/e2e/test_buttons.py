"""The buttons under a result, clicked in the fake Discord through the real client: what each
does, who may use it and who pays, and that they keep working across a restart."""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.conftest import BotRunner, RunningBot, eventually, shown_reply
from tests.fakes.fake_discord import (
    DEFAULT_USER_ID,
    EPHEMERAL,
    MODAL,
    FakeInteraction,
)

OTHER_MEMBER = DEFAULT_USER_ID + 1
NO_PERMISSIONS = "0"
MANAGE_MESSAGES = str(1 << 13)
LIGHTHOUSE = {"prompt": "a lighthouse at dusk"}


async def posted_result(bot: RunningBot, options: dict[str, object] | None = None) -> Any:
    """The channel message showing the result of one /imagine by the default member."""
    before = len(bot.discord.channel_messages[bot.discord.channel_id])
    await bot.command("imagine", options or LIGHTHOUSE)
    posts = await bot.channel_posts(count=before + 1)
    return posts[before]["message"]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """The message's buttons: label -> custom_id."""
    return {
        component["label"]: component["custom_id"]
        for row in message["components"]
        for component in row["components"]
    }


async def click(
    bot: RunningBot, message: dict[str, Any], label: str, **kwargs: Any
) -> tuple[FakeInteraction, dict[str, Any]]:
    """Press the button labelled ``label``; the interaction and the message the clicker sees."""
    clicked = await bot.discord.click_button(buttons(message)[label], message, **kwargs)
    return clicked, await shown_reply(clicked)


def jobs(database: Path) -> list[dict[str, Any]]:
    """Every job's row, oldest first."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM jobs ORDER BY id")]


def text_of(message: dict[str, Any]) -> str:
    return " ".join(
        [message.get("content") or "", *(e.get("description", "") for e in message["embeds"])]
    )


async def credits_left_today(bot: RunningBot, user_id: int) -> str:
    _, reply = await bot.command("quota", user_id=user_id)
    fields = {f["name"]: f["value"] for f in reply["data"]["embeds"][0]["fields"]}
    return str(fields["Today"])


async def test_a_result_shows_every_button_but_its_own_tier(bot: RunningBot) -> None:
    message = await posted_result(bot)

    rows = [[c["label"] for c in row["components"]] for row in message["components"]]
    assert rows == [["Reroll", "Standard", "Ultra", "Edit"], ["Details", "Share", "Delete"]]


async def test_reroll_queues_the_same_request_as_a_remix(bot: RunningBot) -> None:
    message = await posted_result(bot)

    _, reply = await click(bot, message, "Reroll")

    source, rerolled = jobs(bot.database)
    assert reply["embeds"][0]["title"] == "Queued"
    assert reply["flags"] & EPHEMERAL
    assert (rerolled["prompt"], rerolled["tier"]) == (source["prompt"], source["tier"])
    assert rerolled["remix_of"] == source["id"]


async def test_reroll_gives_a_seeded_request_a_new_seed(bot: RunningBot) -> None:
    message = await posted_result(bot, {**LIGHTHOUSE, "seed": 42})

    await click(bot, message, "Reroll")

    source, rerolled = jobs(bot.database)
    assert source["seed"] == 42
    assert rerolled["seed"] is not None
    assert rerolled["seed"] != 42


async def test_reroll_asks_for_as_many_images_as_the_request_did(bot: RunningBot) -> None:
    await bot.command("imagine", {**LIGHTHOUSE, "count": 2})
    await eventually(lambda: [job["state"] for job in jobs(bot.database)] == ["delivered"] * 2)
    message = bot.discord.channel_messages[bot.discord.channel_id][0]["message"]

    await click(bot, message, "Reroll")

    assert len(jobs(bot.database)) == 4


async def test_a_tier_button_queues_the_request_at_that_tier(bot: RunningBot) -> None:
    message = await posted_result(bot, {**LIGHTHOUSE, "aspect_ratio": "16:9"})

    _, reply = await click(bot, message, "Ultra")

    _, at_ultra = jobs(bot.database)
    assert reply["embeds"][0]["title"] == "Queued"
    assert (at_ultra["tier"], at_ultra["aspect_ratio"], at_ultra["credits"]) == ("ultra", "16:9", 3)


async def test_edit_opens_a_form_with_the_prompts_filled_in(bot: RunningBot) -> None:
    message = await posted_result(bot, {**LIGHTHOUSE, "negative_prompt": "boats"})

    clicked = await bot.discord.click_button(buttons(message)["Edit"], message)
    callback = await clicked.wait_for_response()

    assert callback["type"] == MODAL
    inputs = {label["component"]["custom_id"]: label for label in callback["data"]["components"]}
    assert inputs["prompt"]["component"]["value"] == "a lighthouse at dusk"
    assert inputs["negative_prompt"]["component"]["value"] == "boats"


async def test_submitting_the_edit_form_queues_the_edited_prompt(bot: RunningBot) -> None:
    message = await posted_result(bot, {**LIGHTHOUSE, "negative_prompt": "boats"})
    clicked = await bot.discord.click_button(buttons(message)["Edit"], message)
    await clicked.wait_for_response()

    submitted = await bot.discord.submit_modal(
        clicked, {"prompt": "a lighthouse at dawn", "negative_prompt": ""}
    )
    reply = await shown_reply(submitted)

    source, edited = jobs(bot.database)
    assert reply["embeds"][0]["title"] == "Queued"
    assert (edited["prompt"], edited["negative_prompt"]) == ("a lighthouse at dawn", None)
    assert edited["remix_of"] == source["id"]


async def test_an_edit_to_a_blank_prompt_is_refused_with_the_reason(bot: RunningBot) -> None:
    message = await posted_result(bot)
    clicked = await bot.discord.click_button(buttons(message)["Edit"], message)
    await clicked.wait_for_response()

    submitted = await bot.discord.submit_modal(clicked, {"prompt": "   "})
    reply = await shown_reply(submitted)

    assert "the prompt is empty" in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert len(jobs(bot.database)) == 1


async def test_details_shows_the_whole_job_privately(bot: RunningBot) -> None:
    message = await posted_result(bot, {**LIGHTHOUSE, "seed": 7, "negative_prompt": "boats"})

    _, reply = await click(bot, message, "Details", user_id=OTHER_MEMBER)

    [job] = jobs(bot.database)
    [embed] = reply["embeds"]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert reply["flags"] & EPHEMERAL
    assert embed["description"] == "a lighthouse at dusk"
    assert (fields["Seed"], fields["Provider"], fields["Job id"]) == (
        "7",
        "replicate",
        str(job["id"]),
    )
    assert (fields["Tier"], fields["Aspect ratio"], fields["Not in the image"]) == (
        "Fast",
        "1:1",
        "boats",
    )
    assert {"Images", "Safety", "Format"} <= set(fields)


async def test_delete_by_the_requester_removes_the_result(bot: RunningBot) -> None:
    message = await posted_result(bot)

    _, reply = await click(bot, message, "Delete", permissions=NO_PERMISSIONS)

    assert int(message["id"]) in bot.discord.deleted_message_ids
    assert reply["flags"] & EPHEMERAL


async def test_delete_by_another_member_is_refused_and_the_result_stays(bot: RunningBot) -> None:
    message = await posted_result(bot)

    _, reply = await click(bot, message, "Delete", user_id=OTHER_MEMBER, permissions=NO_PERMISSIONS)

    assert "Manage Messages" in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert bot.discord.deleted_message_ids == set()


async def test_delete_by_a_member_who_manages_messages_removes_the_result(
    bot: RunningBot,
) -> None:
    message = await posted_result(bot)

    await click(bot, message, "Delete", user_id=OTHER_MEMBER, permissions=MANAGE_MESSAGES)

    assert int(message["id"]) in bot.discord.deleted_message_ids


async def test_another_members_reroll_is_theirs_and_charged_to_them(bot: RunningBot) -> None:
    message = await posted_result(bot, {**LIGHTHOUSE, "tier": "standard"})

    await click(bot, message, "Reroll", user_id=OTHER_MEMBER)

    _, theirs = jobs(bot.database)
    assert theirs["user_id"] == OTHER_MEMBER
    assert (await credits_left_today(bot, OTHER_MEMBER)).startswith("**8** of 10 left")
    assert (await credits_left_today(bot, DEFAULT_USER_ID)).startswith("**8** of 10 left")


async def test_a_click_past_the_clickers_credits_is_refused_with_the_reason(
    bot: RunningBot,
) -> None:
    await bot.command("imagine-admin default-limit", {"daily": 1})
    message = await posted_result(bot)

    _, reply = await click(bot, message, "Reroll")

    assert "you have 0 of your 1 daily credits left" in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert len(jobs(bot.database)) == 1


async def test_a_button_naming_a_job_the_bot_does_not_know_is_refused(bot: RunningBot) -> None:
    message = copy.deepcopy(await posted_result(bot))
    forged = "imagine:reroll:999999"
    message["components"][0]["components"][0]["custom_id"] = forged

    clicked = await bot.discord.click_button(forged, message)
    reply = await shown_reply(clicked)

    assert "I no longer know that image" in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert len(jobs(bot.database)) == 1


async def test_a_malformed_button_id_is_refused_like_an_unknown_job(bot: RunningBot) -> None:
    message = copy.deepcopy(await posted_result(bot))
    forged = "imagine:tier:mega:1"
    message["components"][0]["components"][1]["custom_id"] = forged

    clicked = await bot.discord.click_button(forged, message)
    reply = await shown_reply(clicked)

    assert "I no longer know that image" in text_of(reply)
    assert len(jobs(bot.database)) == 1


async def test_every_button_answers_within_three_seconds(bot: RunningBot) -> None:
    message = await posted_result(bot)

    delays = []
    for label in ("Reroll", "Standard", "Ultra", "Edit", "Details", "Delete"):
        clicked = await bot.discord.click_button(buttons(message)[label], message)
        await clicked.wait_for_response()
        delays.append(clicked.response_delay)

    assert all(delay is not None and delay < 3.0 for delay in delays)


async def test_a_button_works_after_the_bot_restarts(runner: BotRunner) -> None:
    async with runner.run() as bot:
        message = await posted_result(bot)

    async with runner.run() as restarted:
        _, reply = await click(restarted, message, "Reroll")

        source, rerolled = jobs(restarted.database)
        assert reply["embeds"][0]["title"] == "Queued"
        assert rerolled["remix_of"] == source["id"]


async def test_an_edit_form_opened_before_a_restart_is_queued_after_it(runner: BotRunner) -> None:
    async with runner.run() as bot:
        message = await posted_result(bot)
        clicked = await bot.discord.click_button(buttons(message)["Edit"], message)
        await clicked.wait_for_response()

    async with runner.run() as restarted:
        submitted = await restarted.discord.submit_modal(
            clicked, {"prompt": "a lighthouse at dawn"}
        )
        reply = await shown_reply(submitted)

        _, edited = jobs(restarted.database)
        assert reply["embeds"][0]["title"] == "Queued"
        assert edited["prompt"] == "a lighthouse at dawn"


async def test_a_results_button_copied_into_another_channel_shows_nothing(
    bot: RunningBot,
) -> None:
    message = copy.deepcopy(await posted_result(bot))
    message["channel_id"] = str(bot.discord.channel_id + 100)

    _, reply = await click(bot, message, "Details")

    assert "I no longer know that image" in text_of(reply)
    assert "lighthouse" not in text_of(reply)


async def test_a_forged_id_naming_a_job_never_posted_cannot_delete_another_result(
    bot: RunningBot,
) -> None:
    """A failed job is never posted: its id forged onto someone else's result reaches nothing."""
    bot.replicate.fail_next()
    await bot.command("imagine", {"prompt": "blocked"}, user_id=OTHER_MEMBER)  # job 1, failed
    await eventually(lambda: bot.job_states() == ["delivered"])
    await bot.command("imagine", {"prompt": "the victim's image"})
    [post] = await bot.channel_posts()
    message = copy.deepcopy(post["message"])
    forged = "imagine:delete:1"
    message["components"][-1]["components"][-1]["custom_id"] = forged

    clicked = await bot.discord.click_button(forged, message, user_id=OTHER_MEMBER)
    reply = await shown_reply(clicked)

    assert "I no longer know that image" in text_of(reply)
    assert int(post["message"]["id"]) not in bot.discord.deleted_message_ids
