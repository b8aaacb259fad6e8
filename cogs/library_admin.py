"""/imagine-admin library: moderating the shared prompt library (issue 12).

Admins set the gallery channel, hide, show or delete entries, stop a member from sharing,
read the reported entries, and forget a member who left. A group of its own under
/imagine-admin, attached by the composition root; as for every admin command, Manage Server
is checked again on each use, and the service audits each change.
"""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Range

from bot.core.errors import InvalidRequest
from bot.core.library import LibraryService
from bot.core.storage.library_protocol import LibraryEntry, ReportedEntry
from bot.messages import FIELD_NAME_LIMIT, NO_MENTIONS, fit, quote
from cogs.common import admin_guild_and_actor

EntryNumber = Range[int, 1, 2**53]
# Enough of a report's reason to judge it; 15 entries of this still fit one embed's 6,000
# characters, and fit() shortens the longest reasons first when they do not.
REASON_SHOWN = 300
MODERATE_HINT = (
    "Hide an entry with /imagine-admin library hide, remove it (with its image and gallery "
    "post) with /imagine-admin library delete, giving its number."
)


def entry_line(entry: LibraryEntry) -> str:
    """An entry as admins' replies name it: number, title (escaped) and author."""
    return f"**#{entry.id}** “{quote(entry.title, 200)}” by <@{entry.author_id}>"


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def reports_embed(reported: list[ReportedEntry]) -> discord.Embed:
    """One field per reported entry, most reported first (the service's order): who shared
    it, how often and why it was last reported, and whether it is already hidden."""
    embed = discord.Embed(title="Reported shared prompts", colour=discord.Colour.orange())
    if not reported:
        embed.description = "No shared prompt of this server has been reported."
        return fit(embed)
    for report in reported:
        entry = report.entry
        state = " · hidden" if entry.hidden else ""
        reason = quote(report.last_reason, REASON_SHOWN) if report.last_reason else "none given"
        reports = _count(report.reports, "report", "reports")
        embed.add_field(
            name=f"#{entry.id} {quote(entry.title, FIELD_NAME_LIMIT)}",
            value=f"by <@{entry.author_id}> · {reports}{state} · "
            f"{discord.utils.format_dt(report.last_reported_at, 'R')}\n"
            f"Last reason: {reason}",
            inline=False,
        )
    embed.set_footer(text=MODERATE_HINT)
    return fit(embed)


class LibraryAdminGroup(app_commands.Group):
    """Moderation of the shared prompt library, under /imagine-admin library."""

    def __init__(self, library: LibraryService) -> None:
        super().__init__(name="library", description="Moderate the shared prompt library")
        self._library = library

    async def _reply(self, interaction: discord.Interaction[discord.Client], text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="channel", description="Also post new shared prompts in a channel")
    @app_commands.describe(channel="The gallery channel (leave out to stop posting)")
    async def channel(
        self,
        interaction: discord.Interaction[discord.Client],
        channel: app_commands.AppCommandChannel | None = None,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        channel_id = None if channel is None else channel.id
        await self._library.set_gallery_channel(guild_id, actor, channel_id)
        if channel_id is None:
            await self._reply(interaction, "New shared prompts are no longer posted in a channel.")
            return
        await self._reply(
            interaction,
            f"New shared prompts will also be posted in <#{channel_id}>, with their image. "
            "Posting is best effort: if I cannot post there (the channel is deleted, or I may "
            "not send messages, embed links or attach files in it), sharing still works and "
            "the post is skipped.",
        )

    @app_commands.command(name="hide", description="Hide a shared prompt from members")
    @app_commands.describe(entry="The entry's number")
    async def hide(
        self, interaction: discord.Interaction[discord.Client], entry: EntryNumber
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        hidden = await self._library.set_hidden(guild_id, actor, entry, True)
        await self._reply(
            interaction,
            f"Hidden: {entry_line(hidden)}. Members no longer see it in browse, search or the "
            "web gallery, nor can they use it; /imagine-admin library show brings it back.",
        )

    @app_commands.command(name="show", description="Show a hidden shared prompt again")
    @app_commands.describe(entry="The entry's number")
    async def show(
        self, interaction: discord.Interaction[discord.Client], entry: EntryNumber
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        shown = await self._library.set_hidden(guild_id, actor, entry, False)
        await self._reply(interaction, f"Shown again: {entry_line(shown)}.")

    @app_commands.command(name="delete", description="Delete a shared prompt and its image")
    @app_commands.describe(entry="The entry's number")
    async def delete(
        self, interaction: discord.Interaction[discord.Client], entry: EntryNumber
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        # Deleting also removes its gallery-channel post: a call to Discord, after the reply.
        await interaction.response.defer(ephemeral=True, thinking=True)
        deleted = await self._library.delete(guild_id, actor, entry)
        await interaction.followup.send(
            f"Deleted: {entry_line(deleted)}, with its image and its gallery-channel post.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="bar", description="Stop a member from sharing prompts")
    @app_commands.describe(member="Who may no longer share (their entries stay)")
    async def bar(
        self,
        interaction: discord.Interaction[discord.Client],
        member: discord.Member | discord.User,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        changed = await self._library.set_barred(guild_id, actor, member.id, True)
        await self._reply(
            interaction,
            f"{member.mention} can no longer share prompts here; what they shared stays (hide "
            "or delete it one by one)."
            if changed
            else f"{member.mention} is already barred from sharing prompts here.",
        )

    @app_commands.command(name="unbar", description="Let a member share prompts again")
    @app_commands.describe(member="Who may share again")
    async def unbar(
        self,
        interaction: discord.Interaction[discord.Client],
        member: discord.Member | discord.User,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        changed = await self._library.set_barred(guild_id, actor, member.id, False)
        await self._reply(
            interaction,
            f"{member.mention} may share prompts here again."
            if changed
            else f"{member.mention} was not barred from sharing prompts here.",
        )

    @app_commands.command(name="reports", description="List the reported shared prompts")
    async def reports(self, interaction: discord.Interaction[discord.Client]) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        reported = await self._library.reported(guild_id)
        await interaction.response.send_message(
            embed=reports_embed(reported), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @app_commands.command(
        name="forget", description="Remove the entries and likes of a member who left"
    )
    @app_commands.describe(member="The member who left (Discord finds them by name or id)")
    async def forget(
        self,
        interaction: discord.Interaction[discord.Client],
        member: discord.Member | discord.User,
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        if isinstance(member, discord.Member):
            # The issue gives admins this for members who left; one still here decides
            # for themselves (/prompts forget-me), and admins can delete entries one by one.
            raise InvalidRequest(
                f"{member.mention} is still a member of this server: they can remove their "
                "own data with /prompts forget-me, and you can delete or hide entries one by "
                "one."
            )
        # Every entry's files and gallery post go too: work that grows with them.
        await interaction.response.defer(ephemeral=True, thinking=True)
        forgotten = await self._library.forget(guild_id, member.id, actor_id=actor)
        entries = _count(len(forgotten.entries), "entry", "entries")
        await interaction.followup.send(
            f"Forgot {member.mention}: removed {entries} with their images, and "
            f"{_count(forgotten.likes, 'like', 'likes')}.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
