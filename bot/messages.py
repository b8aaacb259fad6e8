"""How jobs look in Discord. Member text only ever goes into embeds, escaped, and every
message is sent with explicit allowed_mentions, so a prompt can never ping anyone.

Every message is also built within Discord's size limits: a message over any of them is
refused whole (400, code 50035), which would leave a stored and charged job unannounced.
Text is escaped first and clipped after (escaping can double it), and every embed goes
through ``fit`` or ``fit_all`` on its way out.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

import discord

from bot.core.domain import Job, Option, Tier
from bot.core.jobs import Submission

TIER_LABELS = {Tier.FAST: "Fast", Tier.STANDARD: "Standard", Tier.ULTRA: "Ultra"}
COLOUR_OK = discord.Colour.green()
COLOUR_WAIT = discord.Colour.blurple()
COLOUR_ERROR = discord.Colour.red()

# Discord's limits, in characters (developer docs: Message resource, "Embed Limits", and
# Create Message: up to 10 embeds). Message content is only ever a mention or a fixed note,
# far within its 2,000 characters.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
MAX_FIELDS = 25
MAX_EMBEDS = 10
# Titles, descriptions, field names and values, footers and author names of all the embeds
# of one message together.
TOTAL_LIMIT = 6000

ELLIPSIS = "…"

NO_MENTIONS = discord.AllowedMentions.none()


def requester_only(user_id: int) -> discord.AllowedMentions:
    """Ping the member who asked, and nobody else whatever the text says."""
    return discord.AllowedMentions(
        everyone=False, roles=False, users=[discord.Object(id=user_id)], replied_user=False
    )


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in an ellipsis when it was cut.

    Safe on escaped markdown: the cut never leaves a lone backslash, which would escape the
    character after it (an escape is a backslash and the character it escapes, and an odd
    run of backslashes at the end means the last one lost its partner).
    """
    if len(text) <= limit:
        return text
    if limit < len(ELLIPSIS):
        return ""
    kept = text[: limit - len(ELLIPSIS)]
    if (len(kept) - len(kept.rstrip("\\"))) % 2:
        kept = kept[:-1]
    return kept + ELLIPSIS


def quote(text: str, limit: int) -> str:
    """Member or provider text shown as written: markdown and mentions escaped, then clipped
    to ``limit``. Clipping comes after escaping, which can double the text (a 4,000-character
    prompt of ``*`` becomes 8,000 characters)."""
    escaped = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return clip(escaped, limit)


@dataclass(slots=True)
class _Text:
    """One text of an embed payload: its own limit, and how it gives way when the message
    is over the total (lower ranks first; never below ``floor``, as Discord refuses an empty
    field name or value, footer text or author name)."""

    holder: dict[str, Any]
    key: str
    limit: int
    rank: int
    floor: int

    @property
    def length(self) -> int:
        return len(self.holder[self.key])

    def clip(self, limit: int) -> int:
        """Clip to ``limit`` (or the floor); how many characters went."""
        before = self.length
        self.holder[self.key] = clip(self.holder[self.key], max(limit, self.floor))
        return before - self.length


def _texts(payload: dict[str, Any]) -> list[_Text]:
    """The texts Discord counts: descriptions give way first, then field values, then
    footers, field names, author names and titles."""
    fields: list[dict[str, Any]] = payload.get("fields", [])
    texts = [_Text(field, "value", FIELD_VALUE_LIMIT, 1, 1) for field in fields]
    texts += [_Text(field, "name", FIELD_NAME_LIMIT, 3, 1) for field in fields]
    for holder, key, limit, rank, floor in (
        (payload, "description", DESCRIPTION_LIMIT, 0, 0),
        (payload.get("footer"), "text", FOOTER_LIMIT, 2, 1),
        (payload.get("author"), "name", AUTHOR_LIMIT, 4, 1),
        (payload, "title", TITLE_LIMIT, 5, 0),
    ):
        if holder is not None and holder.get(key):
            texts.append(_Text(holder, key, limit, rank, floor))
    return texts


def fit_all(embeds: Sequence[discord.Embed]) -> list[discord.Embed]:
    """Copies of the embeds of one message, within Discord's limits: each text clipped to its
    own limit, fields past the 25th dropped (Discord would refuse the message), and then the
    6,000-character total of all of them met by shortening descriptions, then long fields
    (see ``_level``).

    More than 10 embeds cannot be one message at all, and which to leave out is the
    caller's choice, so that is refused.
    """
    if len(embeds) > MAX_EMBEDS:
        raise ValueError(f"a message holds at most {MAX_EMBEDS} embeds, not {len(embeds)}")
    payloads = [cast(dict[str, Any], copy.deepcopy(embed.to_dict())) for embed in embeds]
    for payload in payloads:
        if "fields" in payload:
            payload["fields"] = payload["fields"][:MAX_FIELDS]
    texts = [text for payload in payloads for text in _texts(payload)]
    for text in texts:
        text.clip(text.limit)
    excess = sum(text.length for text in texts) - TOTAL_LIMIT
    for rank in sorted({text.rank for text in texts}):
        if excess <= 0:
            break
        excess = _level([text for text in texts if text.rank == rank], excess)
    return [discord.Embed.from_dict(payload) for payload in payloads]


def _level(texts: list[_Text], excess: int) -> int:
    """Cut texts of one rank to one common length, the longest that takes ``excess``
    characters off: the longest give way first and none more than needed, so each embed of a
    message keeps its share (its prompt, say). Returns what is still over."""

    def taken(length: int) -> int:
        return sum(max(text.length - length, 0) for text in texts)

    # Bisect for the longest length that still takes enough off (0 if none does).
    low, high = 0, max(text.length for text in texts)
    while low < high:
        middle = (low + high + 1) // 2
        if taken(middle) >= excess:
            low = middle
        else:
            high = middle - 1
    for text in texts:
        excess -= text.clip(low)
    return excess


def fit(embed: discord.Embed) -> discord.Embed:
    """A copy of a message's one embed within Discord's limits (see ``fit_all``)."""
    [fitted] = fit_all([embed])
    return fitted


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
            f">>> {quote(job.request.prompt, DESCRIPTION_LIMIT)}"
        ),
        colour=COLOUR_WAIT,
    )
    if job.request.negative_prompt:
        embed.add_field(
            name="Not in the image", value=quote(job.request.negative_prompt, FIELD_VALUE_LIMIT)
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
    return fit(embed)


def _credits(credits: int) -> str:
    return f"{credits} credit{'' if credits == 1 else 's'}"


def result_embed(job: Job, image_filename: str | None, oversized: Sequence[str]) -> discord.Embed:
    embed = discord.Embed(
        description=quote(job.request.prompt, DESCRIPTION_LIMIT), colour=COLOUR_OK
    )
    embed.add_field(name="Tier", value=TIER_LABELS[job.request.tier])
    embed.add_field(name="Aspect ratio", value=job.request.aspect_ratio.value)
    seconds = job.generation_seconds
    if seconds is not None:
        embed.add_field(name="Took", value=f"{seconds:.1f} s")
    if job.request.negative_prompt:
        embed.add_field(
            name="Not in the image",
            value=quote(job.request.negative_prompt, FIELD_VALUE_LIMIT),
            inline=False,
        )
    if job.effective_prompt and job.effective_prompt != job.request.prompt:
        embed.add_field(
            name="Prompt as the service rewrote it",
            value=quote(job.effective_prompt, FIELD_VALUE_LIMIT),
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
                f"{len(oversized)} image(s) did not fit this server's upload limit; "
                f"they are kept with job #{job.id}."
            ),
            inline=False,
        )
    embed.set_footer(text=f"Job #{job.id} · {_credits(job.credits)} · {_settings_line(job)}")
    return fit(embed)


def failure_embed(job: Job) -> discord.Embed:
    embed = discord.Embed(
        title="Your image could not be made",
        description=clip(job.error or "The job failed.", DESCRIPTION_LIMIT),
        colour=COLOUR_ERROR,
    )
    if job.credits:
        # A field of its own, not a line of the description: descriptions are the first text
        # fit_all shortens when several embeds share a message, while field values are cut
        # longest first to a common length that stays far above this note's 30-odd
        # characters in any message of 10 embeds. A long error never cuts off what the
        # member most needs to read.
        embed.add_field(
            name="Refund",
            value=f"{_credits(job.credits).capitalize()} given back to you.",
            inline=False,
        )
    embed.add_field(name="Prompt", value=quote(job.request.prompt, FIELD_VALUE_LIMIT), inline=False)
    embed.set_footer(text=f"Job #{job.id} · {_settings_line(job)}")
    return fit(embed)


def error_embed(message: str) -> discord.Embed:
    return fit(discord.Embed(description=message, colour=COLOUR_ERROR))
