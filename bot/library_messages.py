"""How the prompt library looks in Discord (issue 12): an entry, a browse page, a member's
own entries. Member text (titles, tags, prompts) is escaped with ``quote`` and clipped, every
embed goes through ``fit``, and the image is always the library's own copy, attached to the
message (``attachment://``), never a CDN link that expires.
"""

from __future__ import annotations

from pathlib import Path

import discord

from bot.core.library import BrowsePage
from bot.core.storage.library_protocol import ForgottenMember, LibraryEntry, Recipe
from bot.messages import (
    COLOUR_OK,
    COLOUR_WAIT,
    SAFETY_LABELS,
    TIER_LABELS,
    TITLE_LIMIT,
    clip,
    fit,
    quote,
)

# A browse page shows a prompt's beginning; Use and Edit & use take the whole of it.
PROMPT_SHOWN = 1500
NEGATIVE_SHOWN = 300
# /prompts mine: the lines of one description, with room for the closing line.
MINE_CHARS = 3900
MINE_TITLE_CHARS = 60
# Discord's limit for an autocomplete choice's name.
CHOICE_NAME_LIMIT = 100
# Discord allows 25 buttons a message (5 rows of 5): one Delete button per entry.
DELETE_BUTTONS = 25
FOUND_WHERE = (
    "It is in this server's library now: members find it with /prompts browse and "
    "/prompts search, and can like it and make it themselves."
)


def image_filename(entry: LibraryEntry) -> str:
    """The attachment's name: the entry's, with the stored image's own suffix."""
    return f"entry-{entry.id}{Path(entry.image_name).suffix}"


def image_file(entry: LibraryEntry, path: Path) -> discord.File:
    """The library's own copy of the image, attached under ``image_filename``."""
    return discord.File(path, filename=image_filename(entry))


def options_line(recipe: Recipe) -> str:
    """The options the entry's image was made with."""
    parts = [
        f"Imagen 4 {TIER_LABELS[recipe.tier]}",
        recipe.aspect_ratio.value,
        recipe.output_format.value.upper(),
        SAFETY_LABELS[recipe.safety],
    ]
    if recipe.seed is not None:
        parts.append(f"seed {recipe.seed}")
    return " · ".join(parts)


def counts_line(entry: LibraryEntry) -> str:
    uses = "once" if entry.uses == 1 else f"{entry.uses} times"
    return f"♥ {entry.likes} · used {uses}"


def tags_line(tags: tuple[str, ...]) -> str:
    return " ".join(f"#{quote(tag, 40)}" for tag in tags) if tags else "None"


def entry_embed(entry: LibraryEntry, *, heading: str) -> discord.Embed:
    """One entry, its image attached (see ``image_file``). ``heading``: markdown of the bot's
    own (member text in it already escaped), shown above the prompt."""
    embed = discord.Embed(
        title=quote(entry.title, TITLE_LIMIT),
        description=f"{heading}\n\n>>> {quote(entry.recipe.prompt, PROMPT_SHOWN)}",
        colour=COLOUR_OK,
        timestamp=entry.created_at,
    )
    embed.add_field(name="Shared by", value=f"<@{entry.author_id}>")
    embed.add_field(name="Likes and uses", value=counts_line(entry))
    embed.add_field(name="Tags", value=tags_line(entry.tags))
    embed.add_field(name="Options", value=options_line(entry.recipe), inline=False)
    negative = entry.recipe.negative_prompt
    if negative:
        embed.add_field(
            name="Not in the image", value=quote(negative, NEGATIVE_SHOWN), inline=False
        )
    embed.set_image(url=f"attachment://{image_filename(entry)}")
    embed.set_footer(text=f"Entry #{entry.id}")
    return fit(embed)


def browse_heading(page: BrowsePage) -> str:
    """What the browse is, then where this page stands in it: "Newest first · 2 of 7".

    The core's heading holds the member's search words as typed: markdown is escaped, while a
    ``<@id>`` (the author filter) stays a mention, as an embed never pings anyone."""
    heading = clip(discord.utils.escape_markdown(page.browse.heading), 300)
    return f"**{heading}** · {page.position + 1} of {page.count}"


def browse_embed(page: BrowsePage) -> discord.Embed:
    return entry_embed(page.entry, heading=browse_heading(page))


def shared_embed(entry: LibraryEntry) -> discord.Embed:
    """The member's new entry, and where others will find it."""
    where = FOUND_WHERE
    if entry.gallery_channel_id is not None and entry.gallery_message_id is not None:
        where += f" It was also posted in <#{entry.gallery_channel_id}>."
    return entry_embed(entry, heading=f"**Shared as entry #{entry.id}.** {where}")


def _mine_line(entry: LibraryEntry) -> str:
    hidden = " · **hidden by the moderators**" if entry.hidden else ""
    title = quote(entry.title, MINE_TITLE_CHARS)
    return f"**#{entry.id}** · {title} · {counts_line(entry)}{hidden}"


def mine_embed(entries: list[LibraryEntry]) -> discord.Embed:
    """The member's entries, newest first, with what the Delete buttons below cover."""
    embed = discord.Embed(title=f"Your shared prompts ({len(entries)})", colour=COLOUR_WAIT)
    if not entries:
        embed.description = "You have not shared anything yet: use Share under a result."
        return fit(embed)
    lines: list[str] = []
    used = 0
    for shown, entry in enumerate(entries):
        line = _mine_line(entry)
        if used + len(line) + 1 > MINE_CHARS:
            lines.append(f"…and {len(entries) - shown} more.")
            break
        lines.append(line)
        used += len(line) + 1
    embed.description = "\n".join(lines)
    beyond = len(entries) - DELETE_BUTTONS
    footer = "Delete an entry with its button below (its image goes too)."
    if beyond > 0:
        footer += (
            f" {beyond} more have no button (a message holds {DELETE_BUTTONS}): "
            "delete those with /prompts delete entry:<id>."
        )
    embed.set_footer(text=footer)
    return fit(embed)


def deleted_text(entry: LibraryEntry) -> str:
    return f"Deleted your shared prompt #{entry.id}, “{quote(entry.title, 200)}”, and its image."


FORGET_QUESTION = (
    "This removes **every prompt you shared on this server**, with their images, and "
    "**all your likes** here. It cannot be undone. Press Confirm to go ahead, or dismiss "
    "this message to keep everything."
)


def forget_question_embed() -> discord.Embed:
    return fit(discord.Embed(title="Forget me?", description=FORGET_QUESTION, colour=COLOUR_WAIT))


def forgotten_embed(forgotten: ForgottenMember) -> discord.Embed:
    entries = len(forgotten.entries)
    likes = forgotten.likes
    text = (
        f"Removed {entries} shared prompt{'' if entries == 1 else 's'} with "
        f"{'its image' if entries == 1 else 'their images'}, and {likes} "
        f"like{'' if likes == 1 else 's'} of yours on other members' prompts."
    )
    return fit(discord.Embed(title="Forgotten", description=text, colour=COLOUR_OK))


def choice_name(text: str) -> str:
    """An autocomplete choice's name: one line, within Discord's 100 characters (shown as
    plain text, so nothing to escape)."""
    return clip(" ".join(text.split()), CHOICE_NAME_LIMIT)


def typed_in(typed: str, *texts: str) -> bool:
    """Whether what a member typed in an autocompleted option appears in any of ``texts``
    (ignoring case and a leading ``#``); nothing typed matches everything."""
    wanted = typed.strip().lstrip("#").casefold()
    return not wanted or any(wanted in text.casefold() for text in texts)
