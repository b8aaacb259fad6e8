"""Domain vocabulary shared by every layer: what a member asks for and what a job is."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


class Tier(enum.StrEnum):
    """Imagen 4 quality tiers; prices per image are $0.02 / $0.04 / $0.06 (providers.md §1.10)."""

    FAST = "fast"
    STANDARD = "standard"
    ULTRA = "ultra"


class AspectRatio(enum.StrEnum):
    """The five ratios every Imagen 4 API accepts (providers.md §1.4, §4.2)."""

    SQUARE = "1:1"
    PORTRAIT_TALL = "9:16"
    LANDSCAPE_WIDE = "16:9"
    PORTRAIT = "3:4"
    LANDSCAPE = "4:3"


class SafetyLevel(enum.StrEnum):
    """Google's safety filter levels, strictest first (providers.md §1.4)."""

    BLOCK_LOW_AND_ABOVE = "block_low_and_above"
    BLOCK_MEDIUM_AND_ABOVE = "block_medium_and_above"
    BLOCK_ONLY_HIGH = "block_only_high"


class OutputFormat(enum.StrEnum):
    JPG = "jpg"
    PNG = "png"


class Option(enum.StrEnum):
    """The /imagine options a provider may be unable to honour (providers.md §5)."""

    NEGATIVE_PROMPT = "negative prompt"
    SEED = "seed"
    SAFETY = "safety level"
    OUTPUT_FORMAT = "output format"


# Imagen returns at most four images per request on every API that takes a count (§5).
MAX_IMAGES = 4
# AIML takes a seed in 0 … 2^32 - 1 (providers.md §2.2); the others take any such number too.
MAX_SEED = 2**32 - 1


# Job ids are SQLite INTEGER PRIMARY KEYs, which stop at 2^63 - 1.
MAX_JOB_ID = 2**63 - 1


def parse_job_id(text: str) -> int | None:
    """The job id ASCII digits name, or None: ``str.isdigit`` also accepts "²", which ``int``
    then refuses, and SQLite cannot bind a number past MAX_JOB_ID."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_JOB_ID)):
        return None
    job_id = int(text)
    return job_id if 1 <= job_id <= MAX_JOB_ID else None


class JobState(enum.StrEnum):
    """Life of a job; the jobs table is the queue and the source of truth.

    queued → submitting → submitted → succeeded | failed → delivered, or undeliverable when no
    Discord destination accepted the result (the images stay on disk); a member may cancel a
    job before it succeeds. ``submitting`` covers exactly the moment a create request may be in
    flight: a job found in it after a crash may or may not exist at the provider, so it is
    never sent again.
    """

    QUEUED = "queued"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"

    @property
    def is_final(self) -> bool:
        return self in (JobState.CANCELED, JobState.DELIVERED, JobState.UNDELIVERABLE)


class Charge(enum.StrEnum):
    """A job's credits: held at enqueue, kept once its images exist, handed back otherwise."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What a member asked for, already validated against the bot's limits.

    ``chosen`` names the options the member set on purpose (the others hold defaults): a
    provider that cannot honour a chosen option must not be used silently.
    """

    prompt: str
    tier: Tier = Tier.FAST
    aspect_ratio: AspectRatio = AspectRatio.SQUARE
    safety: SafetyLevel = SafetyLevel.BLOCK_MEDIUM_AND_ABOVE
    output_format: OutputFormat = OutputFormat.JPG
    negative_prompt: str | None = None
    seed: int | None = None
    image_count: int = 1
    chosen: frozenset[Option] = frozenset()

    @property
    def wanted(self) -> frozenset[Option]:
        """The options this request needs honoured: those chosen, plus any given text."""
        given = {Option.NEGATIVE_PROMPT} if self.negative_prompt else set()
        if self.seed is not None:
            given.add(Option.SEED)
        return self.chosen | given


@dataclass(frozen=True, slots=True)
class DiscordTarget:
    """Where a result goes. Plain ids and strings so the core never needs discord.py.

    The interaction token lets the bot answer through the interaction webhook for 15 minutes
    (Discord's documented token lifetime), which works even where the bot may not post.
    """

    guild_id: int | None
    channel_id: int
    user_id: int
    application_id: int
    interaction_token: str
    interaction_expires_at: datetime
    attachment_size_limit: int
    # The channel a thread belongs to (None outside threads): a server's allowed channels
    # include the threads under them. Only the request's check reads it; it is not stored.
    parent_channel_id: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """Who asked, as far as quotas care: roles decide limits and which tiers are open."""

    guild_id: int
    user_id: int
    role_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Reservation:
    """The limits a new job's credits must fit, checked in the same write that stores the job.

    Limits of None are unlimited. Usage counts jobs created since ``counted_since`` (a period
    start, or a later admin reset) whose credits were not released, minus credits granted in
    the period. ``jobs`` jobs of ``credits`` each are taken together or not at all.
    """

    credits: int
    member_daily: int | None
    member_monthly: int | None
    guild_monthly: int | None
    max_queued_per_member: int | None
    max_queued_per_guild: int | None
    day_start: float
    month_start: float
    member_counted_since_day: float
    member_counted_since_month: float
    jobs: int = 1


@dataclass(frozen=True, slots=True)
class SharedOrigin:
    """The prompt-library entry a job was made from (its Use button), as it was then: the
    result says "remix of <title> by <author>" even if the entry is gone by the time it
    posts."""

    entry_id: int
    title: str
    author_id: int


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the jobs table."""

    id: int
    state: JobState
    request: GenerationRequest
    target: DiscordTarget
    provider: str | None
    provider_job_id: str | None
    callback_token: str
    attempts: int
    error: str | None
    delivery_error: str | None
    image_paths: tuple[Path, ...]
    created_at: datetime
    updated_at: datetime
    credits: int = 0
    charge: Charge = Charge.RESERVED
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    delivered_at: datetime | None = None
    # Which of a member's request's jobs this is: one request for N images becomes N jobs
    # where the providers return one image per request.
    batch_index: int = 1
    batch_size: int = 1
    # What was actually applied: the prompt the provider used (AIML may rewrite it) and the
    # chosen options the provider could not honour.
    effective_prompt: str | None = None
    not_applied: frozenset[Option] = frozenset()
    # Providers that may hold an unconfirmed create of this job: it is never sent there again.
    maybe_created_at: tuple[str, ...] = ()
    # When the result was first shown in the member's private response instead of the channel.
    private_delivery_at: datetime | None = None
    # The job whose result this request was started from (a button, a shared prompt).
    remix_of: int | None = None
    # The channel message showing the request's images, once posted.
    result_message_id: int | None = None
    # When the member was told this job could not reach them (undeliverable jobs only).
    undelivered_told_at: datetime | None = None
    # When the create that made the image was sent (the last one, after any failover).
    create_sent_at: datetime | None = None
    # The shared prompt this job was made from, if any.
    shared_from: SharedOrigin | None = None

    @property
    def generation_seconds(self) -> float | None:
        """Time from the member's request until the image was stored."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()
