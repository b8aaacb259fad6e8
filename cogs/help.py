"""/help: what the bot does, its commands, and the credits and tiers as this server set them."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.quotas import PeriodUsage, QuotaService, QuotaStatus
from bot.messages import NO_MENTIONS, TIER_LABELS, fit
from cogs.common import member_of

COMMANDS = (
    ("/imagine", "Make images from a prompt: tier, shape, safety, count and more."),
    ("/queue", "Your waiting and running images, with a button to cancel each."),
    ("/jobs", "Your recent images; Show posts one to you again."),
    ("/quota", "Your credits left today and this month."),
    ("/settings", "Your own defaults for /imagine: tier, shape, safety and file type."),
    ("/imagine-admin", "Server settings, limits and usage (Manage Server)."),
)
BUTTONS = (
    "Under every result: **Reroll** (the same prompt again), **Fast** / **Standard** / "
    "**Ultra** (the same prompt at another tier), **Edit** (change the prompt first), "
    "**Details** (everything about the image) and **Delete** (the requester or a moderator). "
    "A new image from a button is yours and uses your credits."
)


def _allowance(name: str, usage: PeriodUsage) -> str:
    if usage.limit is None:
        return f"{name}: unlimited"
    return f"{name}: {usage.limit} credits"


def help_embed(status: QuotaStatus) -> discord.Embed:
    embed = discord.Embed(
        title="Imagine: images from Google Imagen 4",
        description=(
            "Describe a picture with /imagine and it is posted in the channel when it is ready. "
            "Requests wait their turn fairly: members take turns, and so do servers."
        ),
        colour=discord.Colour.blurple(),
    )
    embed.add_field(
        name="Commands",
        value="\n".join(f"**{name}**: {what}" for name, what in COMMANDS),
        inline=False,
    )
    embed.add_field(name="Buttons", value=BUTTONS, inline=False)
    embed.add_field(
        name="Tiers here",
        value="\n".join(
            f"{TIER_LABELS[tier]}: {credits} credit(s) per image"
            + (" (not open to you)" if tier in status.closed_tiers else "")
            for tier, credits in status.tier_credits.items()
        ),
        inline=False,
    )
    embed.add_field(
        name="Your credits",
        value=f"{_allowance('Daily', status.day)} · {_allowance('Monthly', status.month)} "
        "(see /quota for what is left). A failed image costs nothing.",
        inline=False,
    )
    return fit(embed)


class HelpCog(commands.Cog):
    def __init__(self, quotas: QuotaService) -> None:
        self._quotas = quotas

    @app_commands.command(name="help", description="What this bot does and how to use it")
    @app_commands.guild_only()
    async def help(self, interaction: discord.Interaction[discord.Client]) -> None:
        status = await self._quotas.status(member_of(interaction))
        await interaction.response.send_message(
            embed=help_embed(status), ephemeral=True, allowed_mentions=NO_MENTIONS
        )
