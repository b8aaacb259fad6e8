"""/queue: a member's own waiting and running jobs, each with a persistent cancel button."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.buttons import JobButton
from bot.core.domain import Job
from bot.core.jobs import JobService
from bot.messages import NO_MENTIONS, TIER_LABELS, fit, quote
from bot.tree import reply_with_error
from cogs.common import member_of

# Discord allows 5 action rows per message; one cancel button per job.
MAX_LISTED = 5
CANCEL_TEMPLATE = r"imagine:cancel:(?P<job_id>[0-9]+)"
# A glimpse of each prompt, enough to tell one's jobs apart; the whole prompt is in the reply.
PROMPT_PREVIEW_CHARS = 200


class CancelJobButton(JobButton, template=CANCEL_TEMPLATE):
    """A cancel button matched by custom_id, so it keeps working after a restart
    (discord.py's DynamicItem persistent-button pattern) with no state kept in memory."""

    ACTION = "cancel"
    LABEL = "Cancel"
    STYLE = discord.ButtonStyle.danger


def bound_cancel_button(jobs: JobService) -> type[CancelJobButton]:
    """The button class bound to this bot's job service (no module-level state)."""

    class BoundCancelJobButton(CancelJobButton, template=CANCEL_TEMPLATE):
        async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
            try:
                job = await jobs.cancel(self.job_id, member_of(interaction))
            except Exception as exc:  # the same error table as commands
                await reply_with_error(interaction, exc)
                return
            refund = f" {job.credits} credit(s) given back." if job.credits else ""
            await interaction.response.send_message(
                f"Job #{job.id} canceled.{refund}", ephemeral=True, allowed_mentions=NO_MENTIONS
            )

    return BoundCancelJobButton


def queue_embed(entries: list[tuple[Job, int | None]]) -> discord.Embed:
    embed = discord.Embed(title="Your jobs", colour=discord.Colour.blurple())
    if not entries:
        embed.description = "Nothing queued or running. Use /imagine to start one."
    for job, position in entries[:MAX_LISTED]:
        status = "running" if position is None else f"position {position}"
        age = discord.utils.format_dt(job.created_at, "R")
        embed.add_field(
            name=f"#{job.id} · {TIER_LABELS[job.request.tier]} · {status}",
            value=f"queued {age}\n{quote(job.request.prompt, PROMPT_PREVIEW_CHARS)}",
            inline=False,
        )
    if len(entries) > MAX_LISTED:
        embed.set_footer(text=f"and {len(entries) - MAX_LISTED} more")
    return fit(embed)


class QueueCog(commands.Cog):
    def __init__(self, bot: commands.Bot, jobs: JobService) -> None:
        self._bot = bot
        self._jobs = jobs
        self._button = bound_cancel_button(jobs)

    async def cog_load(self) -> None:
        self._bot.add_dynamic_items(self._button)

    async def cog_unload(self) -> None:
        self._bot.remove_dynamic_items(self._button)

    @app_commands.command(name="queue", description="Your queued and running images")
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction[discord.Client]) -> None:
        entries = await self._jobs.member_jobs(member_of(interaction))
        view = discord.ui.View(timeout=None)
        for job, _ in entries[:MAX_LISTED]:
            view.add_item(self._button(job.id))
        await interaction.response.send_message(
            embed=queue_embed(entries), view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )
