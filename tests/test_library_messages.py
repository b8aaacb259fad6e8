"""The prompt library's Discord side rendered: embeds within Discord's limits whatever members
wrote, escaped; buttons within a message's rows; custom_ids that parse back exactly and
refuse anything the bot did not make."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import discord
import pytest

from bot.buttons import details_embed
from bot.core.delivery import Result
from bot.core.domain import (
    AspectRatio,
    Job,
    JobState,
    OutputFormat,
    SafetyLevel,
    SharedOrigin,
    Tier,
)
from bot.core.library import BrowsePage
from bot.core.storage.library_protocol import Browse, LibraryEntry, Recipe
from bot.library_components import (
    LibraryAction,
    LibraryClick,
    browse_view,
    delete_buttons_view,
    edit_and_use_modal,
    parse_library_click,
    report_modal,
    share_modal,
    suggested_title,
)
from bot.library_messages import browse_embed, mine_embed, shared_embed
from bot.messages import fit, request_embed
from tests.factories import a_request, a_target

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SPECIALS = "*_~|`\\"
# A prompt as long as one can be, every character one that escaping doubles.
WORST_PROMPT = (SPECIALS * 700)[:4000]
# Discord's limits (developer docs: Message resource, "Embed Limits"; Component reference).
EMBED_TOTAL = 6000
CUSTOM_ID_LIMIT = 100
ROWS_LIMIT = 5
ROW_BUTTONS_LIMIT = 5
MODAL_TITLE_LIMIT = 45


def an_entry(**overrides: object) -> LibraryEntry:
    fields: dict[str, object] = {
        "id": 12,
        "guild_id": 1,
        "author_id": 99,
        "author_name": "Ada",
        "job_id": 7,
        "title": "Stormy *lighthouse*",
        "tags": ("sea", "night"),
        "recipe": Recipe(
            prompt="a lighthouse at dusk @everyone",
            negative_prompt="boats",
            tier=Tier.STANDARD,
            aspect_ratio=AspectRatio.LANDSCAPE_WIDE,
            safety=SafetyLevel.BLOCK_MEDIUM_AND_ABOVE,
            output_format=OutputFormat.PNG,
            seed=42,
        ),
        "image_name": "0123abcd.png",
        "thumbnail_name": "0123abcd-thumb.jpg",
        "width": 1024,
        "height": 576,
        "created_at": NOW,
        "hidden": False,
        "likes": 3,
        "uses": 1,
    }
    fields.update(overrides)
    return LibraryEntry(**fields)  # type: ignore[arg-type]


def a_page(position: int = 0, count: int = 3, **overrides: object) -> BrowsePage:
    browse = Browse(
        id=5,
        guild_id=1,
        user_id=2,
        entry_ids=tuple(range(10, 10 + count)),
        heading="Best matches for “*bold* <@&4>”",
        created_at=NOW,
    )
    return BrowsePage(browse, position, an_entry(**overrides))


def a_job(**overrides: object) -> Job:
    fields: dict[str, object] = {
        "id": 7,
        "state": JobState.DELIVERED,
        "request": a_request(),
        "target": a_target(),
        "provider": "replicate",
        "provider_job_id": "p1",
        "callback_token": "token",
        "attempts": 1,
        "error": None,
        "delivery_error": None,
        "image_paths": (Path("images/7-1.jpg"),),
        "created_at": NOW,
        "updated_at": NOW,
        "finished_at": NOW,
        "credits": 1,
    }
    fields.update(overrides)
    return Job(**fields)  # type: ignore[arg-type]


def total(embed: discord.Embed) -> int:
    texts = [embed.title, embed.description, embed.footer.text, embed.author.name]
    texts += [text for field in embed.fields for text in (field.name, field.value)]
    return sum(len(text or "") for text in texts)


def labels(view: discord.ui.View) -> list[list[tuple[str | None, bool]]]:
    """The view's buttons as Discord lays them out: (label, disabled) per row."""
    rows = view.to_components()
    return [[(c["label"], c.get("disabled", False)) for c in row["components"]] for row in rows]


# ------------------------------------------------------------------------- custom_ids


@pytest.mark.parametrize(
    "click",
    [
        LibraryClick(LibraryAction.NEXT, (5, 0)),
        LibraryClick(LibraryAction.PREVIOUS, (2**63 - 1, 499)),
        LibraryClick(LibraryAction.LIKE, (5, 2, 12)),
        LibraryClick(LibraryAction.USE, (12,)),
        LibraryClick(LibraryAction.FORGET, (1_333_333_333_333_333_333,)),
    ],
)
def test_a_custom_id_parses_back_to_its_click(click: LibraryClick) -> None:
    assert parse_library_click(click.custom_id) == click
    assert len(click.custom_id) <= CUSTOM_ID_LIMIT


@pytest.mark.parametrize(
    "custom_id",
    [
        "library:next:5",  # a number short
        "library:like:5:2",  # a number short
        "library:use:12:13",  # a number too many
        "library:use:0",  # ids start at 1
        "library:use:9223372036854775808",  # past SQLite's integers
        "library:use:\uff11\uff12",  # full-width digits
        "library:use:²",
        "library:use:-3",
        "library:use: 12",
        "library:next:5:500",  # past the longest browse
        "library:shout:1",
        "imagine:use:1",
        "library:",
    ],
)
def test_a_custom_id_the_bot_never_makes_is_refused(custom_id: str) -> None:
    assert parse_library_click(custom_id) is None


# ----------------------------------------------------------------------------- browse


def test_a_browse_page_shows_its_buttons_on_two_rows() -> None:
    view = browse_view(a_page(position=1))

    assert labels(view) == [
        [("Previous", False), ("Next", False), ("♥ Like · 3", False)],
        [("Use", False), ("Edit & use", False), ("Report", False)],
    ]


def test_previous_and_next_are_disabled_at_the_ends() -> None:
    first = labels(browse_view(a_page(position=0)))[0]
    last = labels(browse_view(a_page(position=2)))[0]

    assert (first[0], last[1]) == (("Previous", True), ("Next", True))
    assert (first[1], last[0]) == (("Next", False), ("Previous", False))


def test_a_browse_page_escapes_what_members_wrote_and_attaches_its_image() -> None:
    embed = browse_embed(a_page(position=1))

    assert embed.title == "Stormy \\*lighthouse\\*"
    assert "Best matches for “\\*bold\\* <@&4>”** · 2 of 3" in (embed.description or "")
    assert "@\u200beveryone" in (embed.description or "")
    assert embed.image.url == "attachment://entry-12.png"
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Shared by"] == "<@99>"
    assert fields["Likes and uses"] == "♥ 3 · used once"
    assert fields["Tags"] == "#sea #night"
    assert fields["Options"] == "Imagen 4 Standard · 16:9 · PNG · Balanced · seed 42"


def test_the_longest_entry_fits_one_message() -> None:
    recipe = dataclasses.replace(
        an_entry().recipe, prompt=WORST_PROMPT, negative_prompt=WORST_PROMPT
    )
    page = a_page(title=WORST_PROMPT[:100], recipe=recipe, tags=("a" * 30,) * 5)

    for embed in (browse_embed(page), shared_embed(page.entry)):
        assert total(embed) <= EMBED_TOTAL
        assert fit(embed).to_dict() == embed.to_dict()


def test_a_shared_entry_says_where_it_can_be_found() -> None:
    posted = an_entry(gallery_channel_id=444, gallery_message_id=555)

    assert "/prompts browse" in (shared_embed(an_entry()).description or "")
    assert "<#444>" in (shared_embed(posted).description or "")


# ------------------------------------------------------------------------------- mine


def test_mine_marks_hidden_entries() -> None:
    embed = mine_embed([an_entry(hidden=True), an_entry(id=13)])

    [hidden, shown] = (embed.description or "").split("\n")
    assert "hidden by the moderators" in hidden
    assert "hidden" not in shown


def test_mine_gives_delete_buttons_to_what_fits_and_says_how_to_delete_the_rest() -> None:
    entries = [an_entry(id=number) for number in range(1, 31)]

    view = delete_buttons_view(entries)
    embed = mine_embed(entries)

    rows = labels(view)
    assert len(rows) <= ROWS_LIMIT
    assert all(len(row) <= ROW_BUTTONS_LIMIT for row in rows)
    assert sum(len(row) for row in rows) == 25
    assert "5 more have no button" in (embed.footer.text or "")
    assert "/prompts delete entry:<id>" in (embed.footer.text or "")


# -------------------------------------------------------------------------------- forms


def test_the_share_form_suggests_the_prompts_first_words() -> None:
    prompt = "a lighthouse at dusk over a stormy sea with gulls circling a tiny red boat below"

    assert suggested_title(prompt) == "a lighthouse at dusk over a stormy sea with gulls circling a"
    assert len(suggested_title("x" * 500)) <= 60


def test_the_forms_fit_discords_limits_and_name_what_they_act_on() -> None:
    entry = an_entry(recipe=dataclasses.replace(an_entry().recipe, prompt=WORST_PROMPT))

    for modal, custom_id in (
        (share_modal(a_job(id=2**63 - 1)), f"library:share:{2**63 - 1}"),
        (edit_and_use_modal(entry), "library:edit:12"),
        (report_modal(entry), "library:report:12"),
    ):
        assert len(modal.title) <= MODAL_TITLE_LIMIT
        assert modal.custom_id == custom_id


# ------------------------------------------------------------------------------ remixes


def test_a_result_made_from_an_entry_names_it_and_its_author() -> None:
    job = a_job(remix_of=3, shared_from=SharedOrigin(12, "Stormy *lighthouse*", 99))

    embed = request_embed([Result(job)])
    details = details_embed(job)

    fields = {field.name: field.value for field in embed.fields}
    assert fields["From the prompt library"] == "Remix of “Stormy \\*lighthouse\\*” by <@99>"
    assert embed.author.name is None  # replaces "Remix of #3"
    assert "Remix of “Stormy" in " ".join(str(field.value) for field in details.fields)
