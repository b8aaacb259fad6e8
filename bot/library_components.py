"""The prompt library's buttons and forms (issue 12): what each carries in its custom_id.

As for the result buttons (bot/buttons.py), every button and form is matched by its
``custom_id`` alone, so a browse, a /prompts mine list or a form opened before a restart
works after it. The ids, ``library:<action>:<numbers>``:

- ``previous`` / ``next``: ``<browse_id>:<position>``, the page the button sat under;
- ``like``: ``<browse_id>:<position>:<entry_id>`` (the page is shown again with its count);
- ``use``, ``edit`` (Edit & use), ``report``, ``delete``: ``<entry_id>``; the forms that
  ``edit`` and ``report`` open carry the same id;
- ``share``: ``<job_id>``, the share form (the Share button under a result is a result
  button, ``imagine:share:<job_id>``, which opens this form);
- ``forget``: ``<user_id>``, the Confirm of /prompts forget-me.

An id is member-visible text and grants nothing: the cog checks every one against the
clicker (their server, their entries, their browse).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import discord
from discord.ext import commands

from bot.buttons import (
    BUTTONS_PER_ROW,
    MODAL_TITLE_LIMIT,
    NEGATIVE_INPUT,
    PROMPT_INPUT,
    TEXT_INPUT_LIMIT,
)
from bot.core.domain import Job
from bot.core.errors import InvalidRequest
from bot.core.library import BROWSE_LIMIT, MAX_REASON_LENGTH, MAX_TITLE_LENGTH, BrowsePage
from bot.core.storage.library_protocol import LibraryEntry
from bot.tree import reply_with_error

PREFIX = "library"
# The cog that answers the library's buttons and forms; LibraryButton finds it by this name.
LIBRARY_COG = "Library"
TITLE_INPUT = "title"
TAGS_INPUT = "tags"
REASON_INPUT = "reason"
# What a click whose custom_id the bot never made is told (a friendly refusal, not a crash).
UNKNOWN_BUTTON = "I do not know that button. Start again with /prompts browse."
# A prefilled title: the prompt's first words, as many as fit in this many characters.
SUGGESTED_TITLE_CHARS = 60
# Discord allows 5 rows of buttons a message.
MAX_ROWS = 5
# Largest id SQLite can bind (a signed 64-bit integer), and Discord's snowflakes fit it too.
_MAX_ID = 2**63 - 1


class LibraryAction(enum.StrEnum):
    PREVIOUS = "previous"
    NEXT = "next"
    LIKE = "like"
    USE = "use"
    EDIT = "edit"
    REPORT = "report"
    SHARE = "share"
    DELETE = "delete"
    FORGET = "forget"


# How many numbers follow each action in its custom_id (see the module's docstring).
_ARITY = {
    LibraryAction.PREVIOUS: 2,
    LibraryAction.NEXT: 2,
    LibraryAction.LIKE: 3,
}

# Every custom_id with the library's prefix reaches the cog, so a malformed one is refused
# in words instead of leaving the click unanswered ("This interaction failed").
TEMPLATE = rf"(?s){PREFIX}:.*"


@dataclass(frozen=True, slots=True)
class LibraryClick:
    """What a library button or form asks: an action and its numbers."""

    action: LibraryAction
    numbers: tuple[int, ...]

    @property
    def custom_id(self) -> str:
        return ":".join([PREFIX, self.action.value, *map(str, self.numbers)])

    @property
    def entry_id(self) -> int:
        """The entry of a like (its last number) or of use, edit, report and delete."""
        return self.numbers[-1]

    @property
    def browse_id(self) -> int:
        return self.numbers[0]

    @property
    def position(self) -> int:
        return self.numbers[1]


def _number(text: str, *, low: int, high: int) -> int | None:
    """The number ASCII digits name within [low, high], else None (``str.isdigit`` accepts
    "²", which ``int`` then refuses)."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)):
        return None
    value = int(text)
    return value if low <= value <= high else None


def parse_library_click(custom_id: str) -> LibraryClick | None:
    """The click a custom_id names, or None unless it is exactly one the bot makes: a known
    action, the right count of numbers, each ASCII digits in range (a position within a
    browse's ``BROWSE_LIMIT``, ids from 1 to SQLite's largest)."""
    parts = custom_id.split(":")
    if len(parts) < 3 or parts[0] != PREFIX:
        return None
    try:
        action = LibraryAction(parts[1])
    except ValueError:
        return None
    texts = parts[2:]
    if len(texts) != _ARITY.get(action, 1):
        return None
    numbers: list[int] = []
    for index, text in enumerate(texts):
        is_position = index == 1 and action in _ARITY
        low, high = (0, BROWSE_LIMIT - 1) if is_position else (1, _MAX_ID)
        number = _number(text, low=low, high=high)
        if number is None:
            return None
        numbers.append(number)
    return LibraryClick(action, tuple(numbers))


# ------------------------------------------------------------------------------ the buttons


@runtime_checkable
class LibraryActions(Protocol):
    """What answers a library button (the library cog)."""

    async def on_library_click(
        self, interaction: discord.Interaction[discord.Client], click: LibraryClick | None
    ) -> None:
        """Answer a click; ``click`` is None when the custom_id names nothing the bot made."""


class LibraryButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One library button; it finds the cog on the bot by name, as ResultButton does (see
    bot/buttons.py for why it is not a class bound to the service)."""

    def __init__(self, button: discord.ui.Button[Any]) -> None:
        super().__init__(button)
        self.click = parse_library_click(button.custom_id or "")

    @classmethod
    def of(
        cls,
        click: LibraryClick,
        label: str,
        *,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
        disabled: bool = False,
    ) -> LibraryButton:
        button = discord.ui.Button[Any](
            label=label, style=style, custom_id=click.custom_id, row=row, disabled=disabled
        )
        return cls(button)

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[discord.Client],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> LibraryButton:
        if isinstance(item, discord.ui.Button):
            return cls(item)
        return cls(discord.ui.Button(custom_id=match.string))

    async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
        client = interaction.client
        cog = client.get_cog(LIBRARY_COG) if isinstance(client, commands.Bot) else None
        if not isinstance(cog, LibraryActions):
            refusal = InvalidRequest("The prompt library is switched off right now.")
            await reply_with_error(interaction, refusal)
            return
        await cog.on_library_click(interaction, self.click)


def browse_view(page: BrowsePage) -> discord.ui.View:
    """Previous and Next (disabled at the ends), Like with its count, Use, Edit & use and
    Report: six buttons, so two rows (Discord allows five a row)."""
    browse_id, position, entry = page.browse.id, page.position, page.entry
    view = discord.ui.View(timeout=None)
    primary = discord.ButtonStyle.primary
    for button in (
        LibraryButton.of(
            LibraryClick(LibraryAction.PREVIOUS, (browse_id, position)),
            "Previous",
            row=0,
            disabled=not page.has_previous,
        ),
        LibraryButton.of(
            LibraryClick(LibraryAction.NEXT, (browse_id, position)),
            "Next",
            row=0,
            disabled=not page.has_next,
        ),
        LibraryButton.of(
            LibraryClick(LibraryAction.LIKE, (browse_id, position, entry.id)),
            f"♥ Like · {entry.likes}",
            row=0,
        ),
        LibraryButton.of(LibraryClick(LibraryAction.USE, (entry.id,)), "Use", style=primary, row=1),
        LibraryButton.of(LibraryClick(LibraryAction.EDIT, (entry.id,)), "Edit & use", row=1),
        LibraryButton.of(
            LibraryClick(LibraryAction.REPORT, (entry.id,)),
            "Report",
            style=discord.ButtonStyle.danger,
            row=1,
        ),
    ):
        view.add_item(button)
    return view


def delete_buttons_view(entries: list[LibraryEntry]) -> discord.ui.View:
    """A Delete button per entry, as many as one message holds (5 rows of 5)."""
    view = discord.ui.View(timeout=None)
    for entry in entries[: BUTTONS_PER_ROW * MAX_ROWS]:
        view.add_item(
            LibraryButton.of(
                LibraryClick(LibraryAction.DELETE, (entry.id,)),
                f"Delete #{entry.id}",
                style=discord.ButtonStyle.danger,
            )
        )
    return view


def forget_view(user_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(
        LibraryButton.of(
            LibraryClick(LibraryAction.FORGET, (user_id,)),
            "Confirm: remove all my shared prompts and likes",
            style=discord.ButtonStyle.danger,
        )
    )
    return view


# -------------------------------------------------------------------------------- forms
#
# Each form is answered by custom_id in the cog's interaction listener, never by the object:
# the cog stops it once sent (see bot/buttons.py edit_modal for why).


def suggested_title(prompt: str) -> str:
    """The prompt's first words, whole, within ``SUGGESTED_TITLE_CHARS``."""
    words = prompt.split()
    title = ""
    for word in words:
        longer = f"{title} {word}".strip()
        if len(longer) > SUGGESTED_TITLE_CHARS:
            break
        title = longer
    return title or prompt.strip()[:SUGGESTED_TITLE_CHARS]


def _text_input(
    custom_id: str,
    *,
    default: str | None,
    max_length: int,
    required: bool,
    paragraph: bool = False,
) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        custom_id=custom_id,
        style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short,
        default=default or None,
        max_length=max_length,
        required=required,
    )


def share_modal(job: Job) -> discord.ui.Modal:
    """The share form for one of the member's jobs: a title (prefilled from the prompt) and
    tags."""
    modal = discord.ui.Modal(
        title=f"Share image #{job.id}"[:MODAL_TITLE_LIMIT],
        custom_id=LibraryClick(LibraryAction.SHARE, (job.id,)).custom_id,
        timeout=None,
    )
    modal.add_item(
        discord.ui.Label(
            text="Title",
            description="Shown to everyone on this server",
            component=_text_input(
                TITLE_INPUT,
                default=suggested_title(job.request.prompt)[:MAX_TITLE_LENGTH],
                max_length=MAX_TITLE_LENGTH,
                required=True,
            ),
        )
    )
    modal.add_item(
        discord.ui.Label(
            text="Tags",
            description="Comma or space separated, up to 5 (like watercolour, sci-fi)",
            component=_text_input(TAGS_INPUT, default=None, max_length=200, required=False),
        )
    )
    return modal


def edit_and_use_modal(entry: LibraryEntry) -> discord.ui.Modal:
    """Edit & use: the entry's prompts, prefilled, with the inputs of the result's Edit form
    (bot/buttons.py), so the same ``submitted_texts`` names read them."""
    recipe = entry.recipe
    modal = discord.ui.Modal(
        title="Edit and make it yourself",
        custom_id=LibraryClick(LibraryAction.EDIT, (entry.id,)).custom_id,
        timeout=None,
    )
    modal.add_item(
        discord.ui.Label(
            text="Prompt",
            description="What should the image show?",
            component=_text_input(
                PROMPT_INPUT,
                default=recipe.prompt[:TEXT_INPUT_LIMIT],
                max_length=TEXT_INPUT_LIMIT,
                required=True,
                paragraph=True,
            ),
        )
    )
    modal.add_item(
        discord.ui.Label(
            text="Not in the image",
            description="What the image should not show (leave empty for nothing)",
            component=_text_input(
                NEGATIVE_INPUT,
                default=(recipe.negative_prompt or "")[:TEXT_INPUT_LIMIT],
                max_length=TEXT_INPUT_LIMIT,
                required=False,
                paragraph=True,
            ),
        )
    )
    return modal


def report_modal(entry: LibraryEntry) -> discord.ui.Modal:
    modal = discord.ui.Modal(
        title=f"Report shared prompt #{entry.id}"[:MODAL_TITLE_LIMIT],
        custom_id=LibraryClick(LibraryAction.REPORT, (entry.id,)).custom_id,
        timeout=None,
    )
    modal.add_item(
        discord.ui.Label(
            text="Reason",
            description="Optional: what is wrong with it? Only the moderators see this.",
            component=_text_input(
                REASON_INPUT,
                default=None,
                max_length=MAX_REASON_LENGTH,
                required=False,
                paragraph=True,
            ),
        )
    )
    return modal
