"""A server's blocklist, managed and met through Discord as admins and members do."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import RunningBot, eventually
from tests.e2e.test_buttons import buttons, click, jobs, posted_result
from tests.fakes.fake_discord import EPHEMERAL, FakeInteraction

MEMBER_PERMISSIONS = "0"  # no Manage Server
REFUSAL = "Your prompt uses a word this server does not allow."
BLOCKED = "lighthouse"


def text_of(message: dict[str, Any]) -> str:
    """Content, embed descriptions and fields of a message, for matching and for proving that
    something is not in it."""
    embeds = message.get("embeds") or []
    return " ".join(
        [
            message.get("content") or "",
            *(e.get("description", "") for e in embeds),
            *(f"{f['name']} {f['value']}" for e in embeds for f in e.get("fields", [])),
        ]
    )


async def block(bot: RunningBot, entry: str, kind: str = "term") -> str:
    """Add an entry as an admin; the admin's reply."""
    _, reply = await bot.command("imagine-admin blocklist add", {"entry": entry, "kind": kind})
    return text_of(reply["data"])


async def credits_left_today(bot: RunningBot) -> str:
    _, reply = await bot.command("quota")
    fields = {f["name"]: f["value"] for f in reply["data"]["embeds"][0]["fields"]}
    return str(fields["Today"])


def shown_at(interaction: FakeInteraction) -> float:
    """Seconds from the command to the message that replaced its loading one."""
    index = next(
        i for i, r in enumerate(interaction.responses) if r["kind"] in ("edit", "followup")
    )
    return interaction.recorded_at[index] - interaction.created_at


@pytest.mark.parametrize(
    "prompt",
    [
        "a lighthouse at dusk",
        "a l\u200bi\u200bg\u200bh\u200bt\u200bh\u200bo\u200bu\u200bs\u200be at dusk",
        "a \uff2c\uff29\uff27\uff28\uff34\uff28\uff2f\uff35\uff33\uff25 at dusk",
    ],
    ids=["plain", "zero-width", "full-width"],
)
async def test_a_blocked_word_is_refused_privately_with_nothing_queued_or_charged(
    bot: RunningBot, prompt: str
) -> None:
    await block(bot, BLOCKED)

    _, refused = await bot.command("imagine", {"prompt": prompt})

    message = refused["data"]
    assert REFUSAL in text_of(message)
    assert message["flags"] & EPHEMERAL
    assert BLOCKED not in text_of(message).lower()
    assert bot.replicate.create_count == 0
    assert bot.job_states() == []
    assert (await credits_left_today(bot)).startswith("**10** of 10 left")


async def test_a_blocked_word_in_the_negative_prompt_is_refused(bot: RunningBot) -> None:
    await block(bot, BLOCKED)

    _, refused = await bot.command(
        "imagine", {"prompt": "a harbour", "negative_prompt": "no lighthouses, no LIGHTHOUSE"}
    )

    assert REFUSAL in text_of(refused["data"])
    assert bot.job_states() == []


async def test_a_word_that_only_contains_a_blocked_term_is_allowed(bot: RunningBot) -> None:
    await block(bot, "light")

    _, reply = await bot.command("imagine", {"prompt": "a lighthouse at dusk"})

    assert reply["data"]["embeds"][0]["title"] == "Queued"


async def test_a_blocked_regex_is_refused_without_echoing_the_pattern(bot: RunningBot) -> None:
    await block(bot, r"light\w*", kind="regex")

    _, refused = await bot.command("imagine", {"prompt": "a LIGHTHOUSE at dusk"})

    assert REFUSAL in text_of(refused["data"])
    assert "light" not in text_of(refused["data"]).lower()
    assert bot.job_states() == []


async def test_a_reroll_of_a_result_whose_prompt_is_now_blocked_is_refused(
    bot: RunningBot,
) -> None:
    message = await posted_result(bot)
    await eventually(lambda: bot.job_states() == ["delivered"])
    await block(bot, BLOCKED)

    _, reply = await click(bot, message, "Reroll")

    assert REFUSAL in text_of(reply)
    assert reply["flags"] & EPHEMERAL
    assert len(jobs(bot.database)) == 1
    assert bot.replicate.create_count == 1


async def test_an_edit_that_keeps_a_blocked_prompt_is_refused(bot: RunningBot) -> None:
    message = await posted_result(bot)
    await block(bot, BLOCKED)
    clicked = await bot.discord.click_button(buttons(message)["Edit"], message)
    await clicked.wait_for_response()

    submitted = await bot.discord.submit_modal(clicked, {"prompt": "a lighthouse at dawn"})
    await eventually(lambda: any(r["kind"] == "followup" for r in submitted.responses))

    [followup] = [r["message"] for r in submitted.responses if r["kind"] == "followup"]
    assert REFUSAL in text_of(followup)
    assert len(jobs(bot.database)) == 1


async def test_a_member_without_manage_server_cannot_add_to_the_blocklist(
    bot: RunningBot,
) -> None:
    _, reply = await bot.command(
        "imagine-admin blocklist add", {"entry": "foo"}, permissions=MEMBER_PERMISSIONS
    )

    assert "Manage Server" in text_of(reply["data"])
    _, listing = await bot.command("imagine-admin blocklist list")
    assert "Nothing is blocked on this server." in text_of(listing["data"])


async def test_a_member_without_manage_server_cannot_remove_from_the_blocklist(
    bot: RunningBot,
) -> None:
    await block(bot, "foo")

    _, reply = await bot.command(
        "imagine-admin blocklist remove", {"number": 1}, permissions=MEMBER_PERMISSIONS
    )

    assert "Manage Server" in text_of(reply["data"])
    _, listing = await bot.command("imagine-admin blocklist list")
    assert "#1" in text_of(listing["data"])


async def test_the_list_shows_entries_escaped_and_privately(bot: RunningBot) -> None:
    await block(bot, "**bold**")
    await block(bot, "@everyone_here")

    _, listing = await bot.command("imagine-admin blocklist list")

    message = listing["data"]
    assert message["flags"] & EPHEMERAL
    assert message["embeds"][0]["title"] == "Blocklist (2 of 100)"
    assert r"\*\*bold\*\*" in text_of(message)
    assert "@\u200beveryone" in text_of(message)


async def test_a_removed_entry_no_longer_refuses_prompts(bot: RunningBot) -> None:
    await block(bot, BLOCKED)
    _, removed = await bot.command("imagine-admin blocklist remove", {"number": 1})

    _, reply = await bot.command("imagine", {"prompt": "a lighthouse at dusk"})

    assert "Removed from the blocklist" in text_of(removed["data"])
    assert reply["data"]["embeds"][0]["title"] == "Queued"


async def test_blocklist_changes_show_in_the_audit(bot: RunningBot) -> None:
    await block(bot, "foo")
    await bot.command("imagine-admin blocklist remove", {"number": 1})

    _, audit = await bot.command("imagine-admin audit")

    line = text_of(audit["data"])
    assert "**blocklist-add** id=1, kind=term, entry=foo" in line
    assert "**blocklist-remove** id=1, kind=term, entry=foo" in line


async def test_an_invalid_regex_is_refused_with_a_clear_message(bot: RunningBot) -> None:
    reply = await block(bot, "(unclosed", kind="regex")

    assert "not a valid regular expression" in reply
    _, listing = await bot.command("imagine-admin blocklist list")
    assert "Nothing is blocked on this server." in text_of(listing["data"])


async def test_a_catastrophic_regex_still_lets_a_long_prompt_be_answered_in_time(
    bot: RunningBot,
) -> None:
    added = await block(bot, r"(a+)+$", kind="regex")
    assert "Added to the blocklist" in added

    interaction, refused = await bot.command("imagine", {"prompt": "a" * 999 + "!"})

    assert shown_at(interaction) < 3.0
    # Out of time counts as a match: a pattern that cannot decide lets nothing through.
    assert REFUSAL in text_of(refused["data"])
    assert bot.job_states() == []
