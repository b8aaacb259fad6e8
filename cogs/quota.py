"""/quota: what a member has left, what each tier costs, and when credits come back."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.quotas import PeriodUsage, QuotaService, QuotaStatus
from bot.messages import NO_MENTIONS, TIER_LABELS, fit
from cogs.common import member_of


def _period_line(usage: PeriodUsage) -> str:
    if usage.limit is None:
        return f"{usage.used} used · unlimited"
    resets = discord.utils.format_dt(usage.resets_at, "R")
    return f"**{usage.remaining}** of {usage.limit} left · resets {resets}"


def quota_embed(status: QuotaStatus) -> discord.Embed:
    embed = discord.Embed(title="Your image credits", colour=discord.Colour.blurple())
    embed.add_field(name="Today", value=_period_line(status.day), inline=False)
    embed.add_field(name="This month", value=_period_line(status.month), inline=False)
    if status.guild_month.limit is not None:
        embed.add_field(
            name="Server budget this month", value=_period_line(status.guild_month), inline=False
        )
    prices = "\n".join(
        f"{TIER_LABELS[tier]}: {credits} credit(s) per image"
        + (" (not open to you)" if tier in status.closed_tiers else "")
        for tier, credits in status.tier_credits.items()
    )
    embed.add_field(name="Prices", value=prices, inline=False)
    return fit(embed)


class QuotaCog(commands.Cog):
    def __init__(self, quotas: QuotaService) -> None:
        self._quotas = quotas

    @app_commands.command(name="quota", description="Your remaining image credits")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction[discord.Client]) -> None:
        status = await self._quotas.status(member_of(interaction))
        await interaction.response.send_message(
            embed=quota_embed(status), ephemeral=True, allowed_mentions=NO_MENTIONS
        )
