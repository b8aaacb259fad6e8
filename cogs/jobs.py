"""/jobs: a member's recent jobs, with a Show button that re-posts a result privately; and the
notice, after a member's next command, of results that found no route to them."""

from __future__ import annotations

import contextlib
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.buttons import JobButton
from bot.core.delivery import DeliveryService
from bot.core.domain import Job, JobState
from bot.core.jobs import JobService
from bot.messages import (
    FIELD_VALUE_LIMIT,
    NO_MENTIONS,
    TIER_LABELS,
    clip,
    fit,
    quote,
    request_embed,
)
from bot.tree import reply_with_error
from cogs.common import member_of

log = logging.getLogger(__name__)

SHOW_TEMPLATE = r"imagine:show:(?P<job_id>[0-9]{1,19})"
# A glimpse of each prompt, enough to tell one's jobs apart.
PROMPT_PREVIEW_CHARS = 120
# Discord allows 5 buttons a row and 5 rows a message.
BUTTONS_PER_ROW = 5
# Fields of the notice; Discord allows 25 an embed, and /jobs lists the rest.
MAX_FAILURES_TOLD = 10
STATE_WORDS = {
    JobState.QUEUED: "queued",
    JobState.SUBMITTING: "starting",
    JobState.SUBMITTED: "generating",
    JobState.SUCCEEDED: "posting",
    JobState.FAILED: "failed",
    JobState.DELIVERED: "delivered",
    JobState.UNDELIVERABLE: "not delivered",
    JobState.CANCELED: "canceled",
}


def _showable(job: Job) -> bool:
    return bool(job.image_paths) and job.state in (JobState.DELIVERED, JobState.UNDELIVERABLE)


class ShowResultButton(JobButton, template=SHOW_TEMPLATE):
    """Re-posts one of the member's finished results to them alone; matched by custom_id so
    it works after a restart."""

    ACTION = "show"
    LABEL = "Show"


def bound_show_button(jobs: JobService, delivery: DeliveryService) -> type[ShowResultButton]:
    """The button class bound to this bot's services (no module-level state)."""

    class BoundShowResultButton(ShowResultButton, template=SHOW_TEMPLATE):
        async def callback(self, interaction: discord.Interaction[discord.Client]) -> None:
            try:
                job = await jobs.kept_result(self.job_id, member_of(interaction))
                # Reading and perhaps re-encoding the images can pass Discord's 3 s.
                await interaction.response.defer(ephemeral=True, thinking=True)
                result = await delivery.kept(job, limit=interaction.filesize_limit)
                await interaction.followup.send(
                    embed=request_embed([result], asked=job.request.image_count),
                    files=[discord.File(a.path, filename=a.filename) for a in result.attachments],
                    ephemeral=True,
                    allowed_mentions=NO_MENTIONS,
                )
            except Exception as exc:  # the same error table as commands
                await reply_with_error(interaction, exc)

    return BoundShowResultButton


def jobs_embed(jobs: list[Job]) -> discord.Embed:
    embed = discord.Embed(title="Your recent images", colour=discord.Colour.blurple())
    if not jobs:
        embed.description = "No images yet. Use /imagine to make one."
    for job in jobs:
        age = discord.utils.format_dt(job.created_at, "R")
        embed.add_field(
            name=f"#{job.id} · {TIER_LABELS[job.request.tier]} · {_state_words(job)}",
            value=f"{age}\n{quote(job.request.prompt, PROMPT_PREVIEW_CHARS)}",
            inline=False,
        )
    return fit(embed)


def _state_words(job: Job) -> str:
    if job.state is JobState.UNDELIVERABLE:
        return "not delivered: use Show" if job.image_paths else "failed, not delivered"
    return STATE_WORDS[job.state]


def undelivered_embed(jobs: list[Job]) -> discord.Embed:
    """What never reached the member: images kept for /jobs, or failures told only now."""
    embed = discord.Embed(
        title="Some of your images could not reach you",
        description=(
            "These finished while neither the channel, your command's response nor a direct "
            "message could reach you."
        ),
        colour=discord.Colour.orange(),
    )
    kept = [job for job in jobs if job.image_paths]
    if kept:
        ids = ", ".join(f"#{job.id}" for job in kept)
        embed.add_field(
            name="Kept for you",
            value=f"Job(s) {ids}: use /jobs and press Show to see them.",
            inline=False,
        )
    for job in [job for job in jobs if not job.image_paths][:MAX_FAILURES_TOLD]:
        refund = f" {job.credits} credit(s) given back." if job.credits else ""
        embed.add_field(
            name=f"Job #{job.id} could not be made",
            value=clip((job.error or "The job failed.") + refund, FIELD_VALUE_LIMIT),
            inline=False,
        )
    return fit(embed)


class JobsCog(commands.Cog):
    def __init__(self, bot: commands.Bot, jobs: JobService, delivery: DeliveryService) -> None:
        self._bot = bot
        self._jobs = jobs
        self._button = bound_show_button(jobs, delivery)

    async def cog_load(self) -> None:
        self._bot.add_dynamic_items(self._button)

    async def cog_unload(self) -> None:
        self._bot.remove_dynamic_items(self._button)

    @app_commands.command(name="jobs", description="Your recent images, to see them again")
    @app_commands.guild_only()
    async def jobs(self, interaction: discord.Interaction[discord.Client]) -> None:
        jobs = await self._jobs.recent(member_of(interaction))
        view = discord.ui.View(timeout=None)
        for job in [job for job in jobs if _showable(job)][: BUTTONS_PER_ROW * 5]:
            view.add_item(self._button(job.id))
        await interaction.response.send_message(
            embed=jobs_embed(jobs), view=view, ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @commands.Cog.listener()
    async def on_app_command_completion(
        self, interaction: discord.Interaction[discord.Client], command: object
    ) -> None:
        """After a member's command has answered, tell them of results that never reached
        them (the command's own response comes first: Discord allows one)."""
        if interaction.guild_id is None or not interaction.response.is_done():
            return
        try:
            missed = await self._jobs.undelivered_news(member_of(interaction))
        except Exception:
            # A notice is not worth an error: the jobs stay untold and wait for the next one.
            log.warning("could not look for undelivered results", exc_info=True)
            return
        if not missed:
            return
        # Told is recorded either way; /jobs lists them first anyway.
        with contextlib.suppress(discord.HTTPException):
            await interaction.followup.send(
                embed=undelivered_embed(missed), ephemeral=True, allowed_mentions=NO_MENTIONS
            )
