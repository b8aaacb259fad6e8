"""How jobs look in Discord. Member text only ever goes into embeds, escaped, and every
message is sent with explicit allowed_mentions, so a prompt can never ping anyone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import discord

from bot.core.domain import Job, Option, Tier
from bot.core.jobs import Submission

TIER_LABELS = {Tier.FAST: "Fast", Tier.STANDARD: "Standard", Tier.ULTRA: "Ultra"}
COLOUR_OK = discord.Colour.green()
COLOUR_WAIT = discord.Colour.blurple()
COLOUR_ERROR = discord.Colour.red()
# Embed descriptions hold at most 4096 characters (Discord's limit); prompts are shorter, but a
# quoted prompt plus escapes must still fit.
_PROMPT_CHARS = 3500

NO_MENTIONS = discord.AllowedMentions.none()


def requester_only(user_id: int) -> discord.AllowedMentions:
    """Ping the member who asked, and nobody else whatever the text says."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(id=user_id)], replied_user=False
    )


def quote_prompt(prompt: str) -> str:
    text = discord.utils.escape_markdown(prompt[:_PROMPT_CHARS])
    return discord.utils.escape_mentions(text)


def _settings_line(job: Job) -> str:
    request = job.request
    line = (
        f"Imagen 4 {TIER_LABELS[request.tier]} · {request.aspect_ratio.value} · "
        f"{request.output_format.value.upper()} · {request.safety.value.replace('_', ' ')}"
    )
    if request.seed is not None:
        line += f" · seed {request.seed}"
    if job.batch_size > 1:
        line += f" · image {job.batch_index} of {job.batch_size}"
    return line


def not_applied_text(options: Collection[Option]) -> str:
    """Say plainly which chosen options the image service could not honour (issue 4)."""
    names = " or ".join(sorted(option.value for option in options))
    it = "it was" if len(options) == 1 else "they were"
    return f"The image service for this job cannot set the {names}, so {it} not applied."


def queued_embed(
    job: Job, position: int | None, *, submission: Submission | None = None
) -> discord.Embed:
    """The member's private status message; position None means the job has started.

    ``submission`` is given for the first reply, which also covers the request's other jobs
    and the options the likely provider will not apply.
    """
    if position is None:
        title, where = "Generating", "Your image is being generated now."
    elif position <= 1:
        title, where = "Queued", "Your image is next in line."
    else:
        title, where = "Queued", f"Your image is number {position} in the queue."
    embed = discord.Embed(
        title=title,
        description=(
            f"{where} It will be posted in this channel when it is ready.\n\n"
            f">>> {quote_prompt(job.request.prompt)}"
        ),
        colour=COLOUR_WAIT,
    )
    if job.request.negative_prompt:
        embed.add_field(
            name="Not in the image", value=quote_prompt(job.request.negative_prompt)[:1024]
        )
    if submission is not None and len(submission.jobs) > 1:
        embed.add_field(
            name="Images",
            value=f"{len(submission.jobs)} images, each posted when it is ready.",
            inline=False,
        )
    if submission is not None and submission.not_applied:
        embed.add_field(name="Note", value=not_applied_text(submission.not_applied), inline=False)
    embed.set_footer(text=f"Job #{job.id} · {_credits(job.credits)} · {_settings_line(job)}")
    return embed


def _credits(credits: int) -> str:
    return f"{credits} credit{'' if credits == 1 else 's'}"


def result_embed(job: Job, image_filename: str | None, oversized: Sequence[str]) -> discord.Embed:
    embed = discord.Embed(description=quote_prompt(job.request.prompt), colour=COLOUR_OK)
    embed.add_field(name="Tier", value=TIER_LABELS[job.request.tier])
    embed.add_field(name="Aspect ratio", value=job.request.aspect_ratio.value)
    seconds = job.generation_seconds
    if seconds is not None:
        embed.add_field(name="Took", value=f"{seconds:.1f} s")
    if job.request.negative_prompt:
        embed.add_field(
            name="Not in the image",
            value=quote_prompt(job.request.negative_prompt)[:1024],
            inline=False,
        )
    if job.effective_prompt and job.effective_prompt != job.request.prompt:
        embed.add_field(
            name="Prompt as the service rewrote it",
            value=quote_prompt(job.effective_prompt)[:1024],
            inline=False,
        )
    if job.not_applied:
        embed.add_field(name="Note", value=not_applied_text(job.not_applied), inline=False)
    if len(job.image_paths) < job.request.image_count:
        embed.add_field(
            name="Fewer images",
            value=(
                f"{len(job.image_paths)} of the {job.request.image_count} images came back (the "
                "service filtered the others); you were charged only for these."
            ),
            inline=False,
        )
    if image_filename is not None:
        embed.set_image(url=f"attachment://{image_filename}")
    if oversized:
        embed.add_field(
            name="Not attached",
            value=(
                f"{len(oversized)} image(s) were larger than this server's upload limit; "
                f"they are kept with job #{job.id}."
            ),
            inline=False,
        )
    embed.set_footer(text=f"Job #{job.id} · {_credits(job.credits)} · {_settings_line(job)}")
    return embed


def failure_embed(job: Job) -> discord.Embed:
    embed = discord.Embed(
        title="Your image could not be made",
        description=(job.error or "The job failed.")
        + (f"\n{_credits(job.credits).capitalize()} given back to you." if job.credits else ""),
        colour=COLOUR_ERROR,
    )
    embed.add_field(name="Prompt", value=quote_prompt(job.request.prompt)[:1024], inline=False)
    embed.set_footer(text=f"Job #{job.id} · {_settings_line(job)}")
    return embed


def error_embed(message: str) -> discord.Embed:
    return discord.Embed(description=message, colour=COLOUR_ERROR)
