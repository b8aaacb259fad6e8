"""/imagine: turn the interaction into a job request and acknowledge it at once."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from bot.core.domain import (
    MAX_IMAGES,
    MAX_SEED,
    AspectRatio,
    OutputFormat,
    SafetyLevel,
    Tier,
)
from bot.core.jobs import JobService, Submission
from bot.core.preferences import Draft, PreferenceService
from bot.core.storage.protocols import OptionDefaults
from bot.messages import NO_MENTIONS, queued_embed
from cogs.common import member_of, target_of

# Discord's own ceiling for a string option is 6000; the bot's configured limit (checked by
# the job service, with a friendly message) is lower.
PROMPT_OPTION_MAX = 4000

TIER_CHOICES = [
    Choice(name="Fast: quickest, 1 credit ($0.02)", value=Tier.FAST.value),
    Choice(name="Standard: more detail, 2 credits ($0.04)", value=Tier.STANDARD.value),
    Choice(name="Ultra: best quality, 3 credits ($0.06)", value=Tier.ULTRA.value),
]
ASPECT_CHOICES = [
    Choice(name="1:1 square", value=AspectRatio.SQUARE.value),
    Choice(name="16:9 landscape (wide)", value=AspectRatio.LANDSCAPE_WIDE.value),
    Choice(name="4:3 landscape", value=AspectRatio.LANDSCAPE.value),
    Choice(name="3:4 portrait", value=AspectRatio.PORTRAIT.value),
    Choice(name="9:16 portrait (tall)", value=AspectRatio.PORTRAIT_TALL.value),
]
SAFETY_CHOICES = [
    Choice(name="Strict: block low risk and above", value=SafetyLevel.BLOCK_LOW_AND_ABOVE.value),
    Choice(
        name="Balanced: block medium risk and above",
        value=SafetyLevel.BLOCK_MEDIUM_AND_ABOVE.value,
    ),
    Choice(name="Lenient: block only high risk", value=SafetyLevel.BLOCK_ONLY_HIGH.value),
]
FORMAT_CHOICES = [
    Choice(name="JPG: smaller file", value=OutputFormat.JPG.value),
    Choice(name="PNG: lossless", value=OutputFormat.PNG.value),
]


class ImagineCog(commands.Cog):
    def __init__(self, jobs: JobService, preferences: PreferenceService) -> None:
        self._jobs = jobs
        self._preferences = preferences

    @app_commands.command(name="imagine", description="Generate an image with Google Imagen 4")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What should the image show?",
        tier="Quality tier (default: yours from /settings, else the server's, else Fast)",
        aspect_ratio="Shape of the image (default: yours, else the server's, else 1:1)",
        safety="How strictly to filter (default: yours, else Balanced)",
        output_format="File type (default: yours, else JPG where the service offers a choice)",
        negative_prompt="What the image should not show",
        seed="A number that makes the result repeatable",
        count="How many images (default: 1)",
    )
    @app_commands.choices(
        tier=TIER_CHOICES,
        aspect_ratio=ASPECT_CHOICES,
        safety=SAFETY_CHOICES,
        output_format=FORMAT_CHOICES,
    )
    async def imagine(
        self,
        interaction: discord.Interaction[discord.Client],
        prompt: app_commands.Range[str, 1, PROMPT_OPTION_MAX],
        tier: str | None = None,
        aspect_ratio: str | None = None,
        safety: str | None = None,
        output_format: str | None = None,
        negative_prompt: app_commands.Range[str, 1, PROMPT_OPTION_MAX] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        count: app_commands.Range[int, 1, MAX_IMAGES] = 1,
    ) -> None:
        # Options left out are None: the core fills them from the member's defaults, the
        # server's or the bot's, and knows which ones the member chose.
        member = member_of(interaction)
        given = OptionDefaults(
            tier=None if tier is None else Tier(tier),
            aspect_ratio=None if aspect_ratio is None else AspectRatio(aspect_ratio),
            safety=None if safety is None else SafetyLevel(safety),
            output_format=None if output_format is None else OutputFormat(output_format),
        )
        draft = Draft(prompt, negative_prompt=negative_prompt, seed=seed, image_count=count)
        # The first response comes before anything that takes time (Discord allows 3 s, and
        # a burst queues commands behind each other): the queued message replaces it.
        await interaction.response.defer(ephemeral=True, thinking=True)
        request = await self._preferences.request_for(member, draft, given)

        async def show_queued(submission: Submission, position: int | None) -> None:
            await interaction.edit_original_response(
                embed=queued_embed(submission.jobs[0], position, submission=submission),
                allowed_mentions=NO_MENTIONS,
            )

        await self._jobs.submit(request, target_of(interaction), member, reply=show_queued)
