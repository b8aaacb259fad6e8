"""Posts shared prompts in a server's gallery channel (issue 12): the Discord side of the
core's GalleryPoster port.

A post is one embed, the entry as a member would want to find it again: its title, prompt,
tags, author and settings, with the library's own copy of the image attached (never a link
to a job's result, which Discord's CDN expires). The author is named by a mention, which
shows who shared it without pinging them: posts go out with no mentions allowed at all.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import discord

from bot.core.errors import ChannelUnavailable
from bot.core.storage.library_protocol import LibraryEntry
from bot.messages import (
    COLOUR_OK,
    DESCRIPTION_LIMIT,
    FIELD_VALUE_LIMIT,
    NO_MENTIONS,
    TIER_LABELS,
    TITLE_LIMIT,
    fit,
    quote,
)
from bot.publisher import refused_for_good


def attachment_name(entry: LibraryEntry, image: Path) -> str:
    """The file's name in the post: the entry's number, so a saved copy says where it came
    from (the stored name is a uuid)."""
    return f"entry-{entry.id}{image.suffix.lower()}"


def gallery_embed(entry: LibraryEntry, filename: str) -> discord.Embed:
    recipe = entry.recipe
    embed = discord.Embed(
        title=quote(entry.title, TITLE_LIMIT),
        description=quote(recipe.prompt, DESCRIPTION_LIMIT),
        colour=COLOUR_OK,
        timestamp=entry.created_at,
    )
    embed.add_field(name="Shared by", value=f"<@{entry.author_id}>")
    embed.add_field(name="Tier", value=TIER_LABELS[recipe.tier])
    embed.add_field(name="Aspect ratio", value=recipe.aspect_ratio.value)
    if entry.tags:
        # Tags may hold underscores, which Discord would read as italics.
        tags = " ".join(f"#{tag}" for tag in entry.tags)
        embed.add_field(name="Tags", value=quote(tags, FIELD_VALUE_LIMIT), inline=False)
    if recipe.negative_prompt:
        embed.add_field(
            name="Not in the image",
            value=quote(recipe.negative_prompt, FIELD_VALUE_LIMIT),
            inline=False,
        )
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"Entry #{entry.id} · like it or use it with /prompts browse")
    return fit(embed)


class GalleryChannelPoster:
    """Addresses channels by id (a partial messageable), so it needs no cache and works for a
    channel set before a restart."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def post_entry(self, channel_id: int, entry: LibraryEntry, image: Path) -> int:
        filename = attachment_name(entry, image)
        channel = self._client.get_partial_messageable(channel_id, guild_id=entry.guild_id)
        try:
            message = await channel.send(
                embed=gallery_embed(entry, filename),
                file=discord.File(image, filename=filename),
                allowed_mentions=NO_MENTIONS,
            )
        except discord.HTTPException as exc:
            if refused_for_good(exc):
                raise ChannelUnavailable(
                    detail=f"gallery channel {channel_id} refused: {exc}"
                ) from exc
            raise
        return message.id

    async def delete_post(self, channel_id: int, message_id: int) -> None:
        channel = self._client.get_partial_messageable(channel_id)
        # Deleted by someone already, or its channel is gone: nothing left to remove.
        with contextlib.suppress(discord.NotFound):
            await channel.get_partial_message(message_id).delete()
