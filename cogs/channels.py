"""/imagine-admin channels add|remove|list: where /imagine and the result buttons work.

A group of its own under /imagine-admin (Discord allows one group level under a command),
attached by the composition root. As for every admin command, Manage Server is checked again
on each use, and each change is audited. The check itself is in the core (``JobService.submit``),
so the result buttons cannot get around it.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.core.quotas import QuotaService
from bot.messages import NO_MENTIONS, fit
from cogs.common import admin_guild_and_actor

# A channel or a thread: a thread listed itself is allowed even when its parent is not.
Channel = app_commands.AppCommandChannel | app_commands.AppCommandThread


def channels_embed(allowed: frozenset[int]) -> discord.Embed:
    embed = discord.Embed(title="Where /imagine works", colour=discord.Colour.blurple())
    embed.description = (
        "\n".join(f"<#{channel}>" for channel in sorted(allowed))
        if allowed
        else "Every channel: none is listed."
    )
    embed.set_footer(text="Threads under a listed channel are allowed too.")
    return fit(embed)


class ChannelsGroup(app_commands.Group):
    """The channels where members may use /imagine and the result buttons."""

    def __init__(self, quotas: QuotaService) -> None:
        super().__init__(name="channels", description="Where /imagine and its buttons work")
        self._quotas = quotas

    async def _done(
        self, interaction: discord.Interaction[discord.Client], what: str, guild_id: int
    ) -> None:
        policy = await self._quotas.policy(guild_id)
        await interaction.response.send_message(
            what,
            embed=channels_embed(policy.allowed_channels),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @app_commands.command(name="add", description="Let members use /imagine in a channel")
    @app_commands.describe(
        channel="Once one channel is listed, /imagine works only in listed channels"
    )
    async def add(self, interaction: discord.Interaction[discord.Client], channel: Channel) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        added = await self._quotas.set_channel_allowed(guild_id, actor, channel.id, allowed=True)
        what = "Channel added." if added else f"<#{channel.id}> was already listed."
        await self._done(interaction, what, guild_id)

    @app_commands.command(name="remove", description="Stop members using /imagine in a channel")
    @app_commands.describe(channel="With no channel left listed, /imagine works everywhere")
    async def remove(
        self, interaction: discord.Interaction[discord.Client], channel: Channel
    ) -> None:
        guild_id, actor = admin_guild_and_actor(interaction)
        removed = await self._quotas.set_channel_allowed(guild_id, actor, channel.id, allowed=False)
        what = "Channel removed." if removed else f"<#{channel.id}> was not listed."
        await self._done(interaction, what, guild_id)

    @app_commands.command(name="list", description="Show where /imagine works on this server")
    async def list_channels(self, interaction: discord.Interaction[discord.Client]) -> None:
        guild_id, _ = admin_guild_and_actor(interaction)
        await self._done(interaction, "Allowed channels:", guild_id)
