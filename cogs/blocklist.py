"""/imagine-admin blocklist add|remove|list: the words and patterns a server refuses in prompts.

A group of its own under /imagine-admin (Discord allows one group level under a command),
attached by the composition root. As for every admin command, the member's Manage Server
permission is checked again on each use, and each change is audited.
"""

from __future__ import annotations

from typing import cast

import discord
from discord import app_commands
from discord.app_commands import Choice, Range

from bot.core.blocklist import MAX_ENTRIES, MAX_PATTERN_LENGTH, BlocklistService
from bot.core.storage.protocols import BlocklistEntry, BlocklistKind
from bot.messages import NO_MENTIONS, fit, quote
from cogs.common import admin_guild_and_actor

KIND_CHOICES = [
    Choice(name="Term (a whole word or phrase)", value="term"),
    Choice(name="Regular expression", value="regex"),
]
# What fits an embed's description with room for the closing line.
LIST_CHARS = 3900


def _line(entry: BlocklistEntry) -> str:
    return f"**#{entry.id}** · {entry.kind} · {quote(entry.text, 700)}"


def blocklist_embed(entries: list[BlocklistEntry]) -> discord.Embed:
    """The entries as admins typed them (escaped: they are shown, never interpreted), as
    many as one message holds, then how many more there are."""
    embed = discord.Embed(
        title=f"Blocklist ({len(entries)} of {MAX_ENTRIES})", colour=discord.Colour.blurple()
    )
    lines: list[str] = []
    used = 0
    for shown, entry in enumerate(entries):
        line = _line(entry)
        if used + len(line) + 1 > LIST_CHARS:
            lines.append(f"…and {len(entries) - shown} more.")
            break
        lines.append(line)
        used += len(line) + 1
    embed.description = "\n".join(lines) or "Nothing is blocked on this server."
    embed.set_footer(
        text="Prompts are compared ignoring case, invisible characters and full-width letters. "
        "A term matches whole words; a regular expression matches anywhere."
    )
    return fit(embed)


class BlocklistGroup(app_commands.Group):
    """Terms and regular expressions this server refuses in prompts."""

    def __init__(self, blocklist: BlocklistService) -> None:
        super().__init__(name="blocklist", description="Words and patterns refused in prompts")
        self._blocklist = blocklist

    @app_commands.command(name="add", description="Refuse prompts with a word or pattern")
    @app_commands.describe(
        entry="The word, phrase or regular expression",
        kind="A term (whole words) or a regular expression (default: term)",
    )
    @app_commands.choices(kind=KIND_CHOICES)
    async def add(
        self,
        interaction: discord.Interaction[discord.Client],
        entry: Range[str, 1, MAX_PATTERN_LENGTH],
        kind: str = "term",
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        added = await self._blocklist.add(guild_id, actor, cast(BlocklistKind, kind), entry)
        await interaction.response.send_message(
            f"Added to the blocklist: {_line(added)}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="remove", description="Allow a blocked word or pattern again")
    @app_commands.describe(number="The entry's number, as /imagine-admin blocklist list shows")
    async def remove(
        self,
        interaction: discord.Interaction[discord.Client],
        number: Range[int, 1, 2**53],
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        removed = await self._blocklist.remove(guild_id, actor, number)
        await interaction.response.send_message(
            f"Removed from the blocklist: {_line(removed)}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="list", description="Show this server's blocklist")
    async def list_entries(self, interaction: discord.Interaction[discord.Client]) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        entries = await self._blocklist.entries(guild_id)
        await interaction.response.send_message(
            embed=blocklist_embed(entries), ephemeral=True, allowed_mentions=NO_MENTIONS
        )
