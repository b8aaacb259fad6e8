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

from bot.core.delivery import Posted, Result
from bot.core.domain import Job, Option, SafetyLevel, Tier
from bot.core.jobs import Submission

TIER_LABELS = {Tier.FAST: "Fast", Tier.STANDARD: "Standard", Tier.ULTRA: "Ultra"}
SAFETY_LABELS = {
    SafetyLevel.BLOCK_LOW_AND_ABOVE: "Strict",
    SafetyLevel.BLOCK_MEDIUM_AND_ABOVE: "Balanced",
    SafetyLevel.BLOCK_ONLY_HIGH: "Lenient",
}
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


def _settings_line(job: Job, not_applied: Collection[Option] = frozenset()) -> str:
    """What was asked for; a seed the service will not apply is not repeated here."""
    request = job.request
    line = (
        f"Imagen 4 {TIER_LABELS[request.tier]} · {request.aspect_ratio.value} · "
        f"{request.output_format.value.upper()} · {SAFETY_LABELS[request.safety]}"
    )
    if request.seed is not None and Option.SEED not in {*not_applied, *job.not_applied}:
        line += f" · seed {request.seed}"
    if job.batch_size > 1:
        line += f" · image {job.batch_index} of {job.batch_size}"
    return line


def not_applied_text(options: Collection[Option]) -> str:
    """Say plainly which chosen options the image service could not honour (issue 4)."""
    names = " or ".join(sorted(option.value for option in options))
    it = "it was" if len(options) == 1 else "they were"
    return f"The image service for this job cannot set the {names}, so {it} not applied."


def safety_floor_text(floor: SafetyLevel) -> str:
    """Why the image is made stricter than the member asked: the server's rule, not a fault."""
    label = SAFETY_LABELS[floor]
    return f"This server's safety floor is {label}: your image is made at {label}."


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
            value=f"{len(submission.jobs)} images, posted together once all are ready.",
            inline=False,
        )
    if submission is not None and submission.safety_floor is not None:
        embed.add_field(
            name="Safety floor", value=safety_floor_text(submission.safety_floor), inline=False
        )
    if submission is not None and submission.not_applied:
        embed.add_field(name="Note", value=not_applied_text(submission.not_applied), inline=False)
    not_applied = submission.not_applied if submission is not None else frozenset()
    embed.set_footer(
        text=f"Job #{job.id} · {_credits(job.credits)} · {_settings_line(job, not_applied)}"
    )
    return fit(embed)


def _credits(credits: int) -> str:
    return f"{credits} credit{'' if credits == 1 else 's'}"


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def _times(job: Job) -> str | None:
    """ "waited 6.1 s · generated in 3.0 s": the wait in the queue apart from the making."""
    sent = job.create_sent_at or job.submitted_at
    if sent is None or job.finished_at is None:
        return None
    waited = (sent - job.created_at).total_seconds()
    made = (job.finished_at - sent).total_seconds()
    return f"waited {_seconds(max(waited, 0.0))} · generated in {_seconds(max(made, 0.0))}"


def applied_options(job: Job, not_applied: Collection[Option]) -> list[str]:
    """The options the images were really made with: a seed or format some provider of the
    request could not apply is not claimed (the note says so instead, issue 4)."""
    request = job.request
    applied = [f"Safety: {SAFETY_LABELS[request.safety]}"]
    if Option.OUTPUT_FORMAT in request.chosen and Option.OUTPUT_FORMAT not in not_applied:
        applied.append(f"Format: {request.output_format.value.upper()}")
    if request.seed is not None and Option.SEED not in not_applied:
        applied.append(f"Seed: {request.seed}")
    return applied


def remix_text(job: Job) -> str:
    """Which shared prompt a job was made from: 'Remix of “title” by <@author>' (the title as
    it was when the member pressed Use; an embed never pings the author)."""
    origin = job.shared_from
    assert origin is not None
    return f"Remix of “{quote(origin.title, 200)}” by <@{origin.author_id}>"


def request_embed(results: Sequence[Result], *, asked: int | None = None) -> discord.Embed:
    """The one embed under a request's images: only what is true of every one of them (its
    jobs may have gone to different providers). ``asked``: how many images these results
    answer, when not the whole request (one job shown again)."""
    first = results[0].job
    request = first.request
    not_applied = frozenset().union(*(result.job.not_applied for result in results))
    embed = discord.Embed(description=quote(request.prompt, DESCRIPTION_LIMIT), colour=COLOUR_OK)
    embed.add_field(name="Tier", value=TIER_LABELS[request.tier])
    embed.add_field(name="Aspect ratio", value=request.aspect_ratio.value)
    embed.add_field(name="Options", value=" · ".join(applied_options(first, not_applied)))
    times = _times(max(results, key=lambda result: result.job.finished_at or first.created_at).job)
    if times is not None:
        embed.add_field(name="Time", value=times, inline=False)
    if request.negative_prompt and Option.NEGATIVE_PROMPT not in not_applied:
        embed.add_field(
            name="Not in the image",
            value=quote(request.negative_prompt, FIELD_VALUE_LIMIT),
            inline=False,
        )
    if first.effective_prompt and first.effective_prompt != request.prompt:
        embed.add_field(
            name="Prompt as the service rewrote it",
            value=quote(first.effective_prompt, FIELD_VALUE_LIMIT),
            inline=False,
        )
    if not_applied:
        embed.add_field(name="Note", value=not_applied_text(not_applied), inline=False)
    if asked is None:
        asked = request.image_count * first.batch_size
    shown = sum(len(result.attachments) for result in results)
    made = sum(len(result.job.image_paths) for result in results)
    if made < asked:
        embed.add_field(
            name="Fewer images",
            value=(
                f"{made} of the {asked} images came back (the service filtered or failed the "
                "others); you were charged only for these."
            ),
            inline=False,
        )
    notes = list(dict.fromkeys(note for result in results for note in result.notes))
    if notes:
        embed.add_field(name="Re-encoded", value=" ".join(notes), inline=False)
    if shown < made:
        embed.add_field(
            name="Not attached",
            value=(
                f"{made - shown} image(s) could not be made to fit this server's upload limit; "
                f"they are kept with job #{first.id}."
            ),
            inline=False,
        )
    if first.shared_from is not None:
        # A field, not the author line: only descriptions and fields show a mention.
        embed.add_field(name="From the prompt library", value=remix_text(first), inline=False)
    elif first.remix_of is not None:
        embed.set_author(name=f"Remix of #{first.remix_of}")
    credits = sum(result.job.credits for result in results)
    ids = [result.job.id for result in results]
    jobs = f"Job #{ids[0]}" if len(ids) == 1 else f"Jobs #{ids[0]} to #{ids[-1]}"
    embed.set_footer(text=f"{jobs} · {_credits(credits)} charged")
    return fit(embed)


def outcome_embed(job: Job, posted: Posted | None, failed: Sequence[Job]) -> discord.Embed:
    """The member's private status, at its end: "Done" with a link to the post, and any
    image that could not be made, in plain words."""
    if posted is None:
        [embed] = fit_all([failure_embed(failure) for failure in failed][:1])
        if len(failed) > 1:
            embed.add_field(
                name="Images",
                value=f"None of the {len(failed)} images could be made.",
                inline=False,
            )
        return fit(embed)
    embed = discord.Embed(
        title="Done",
        description=f"[Jump to your result]({posted.jump_url})",
        colour=COLOUR_OK,
    )
    for failure in failed[: MAX_FIELDS - 1]:
        refund = f" {_credits(failure.credits).capitalize()} given back." if failure.credits else ""
        embed.add_field(
            name=f"Image {failure.batch_index} could not be made",
            value=clip((failure.error or "The job failed.") + refund, FIELD_VALUE_LIMIT),
            inline=False,
        )
    embed.set_footer(text=f"Job #{job.id}")
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
