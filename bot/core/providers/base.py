"""The one small interface every image provider implements."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.core.domain import GenerationRequest, Option, OutputFormat, Tier
from bot.core.errors import ProviderError
from bot.core.images import Image


class ProviderStatus(enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProviderJob:
    """The provider's own view of one job, as last confirmed by the provider.

    ``output_urls`` may hold ``data:`` URIs for images that came inline. ``prompt_used`` is
    the prompt the provider says it generated from, when it says so (AIML rewrites prompts).
    """

    id: str
    status: ProviderStatus
    output_urls: tuple[str, ...] = ()
    failure: ProviderError | None = None
    prompt_used: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one provider can do for one tier (providers.md §5)."""

    max_images: int
    max_prompt_length: int | None
    options: frozenset[Option]
    output_formats: frozenset[OutputFormat]

    def unmet(self, request: GenerationRequest) -> frozenset[Option]:
        """The options the request needs that this provider would not apply."""
        missing = request.wanted - self.options
        if request.output_format not in self.output_formats:
            missing |= request.wanted & {Option.OUTPUT_FORMAT}
        else:
            missing -= {Option.OUTPUT_FORMAT}
        return missing

    def accepts_prompt(self, prompt: str) -> bool:
        """Limits are counted as the providers' JavaScript validators count them, in UTF-16
        units, so an emoji counts twice; never fewer than Python's characters."""
        return self.max_prompt_length is None or utf16_length(prompt) <= self.max_prompt_length


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class PollSchedule:
    """Seconds between status polls by how long the bot has been polling: each ``(until,
    interval)`` step in turn, then ``final``."""

    steps: tuple[tuple[float, float], ...]
    final: float

    def waits(self) -> Iterator[float]:
        elapsed = 0.0
        for until, interval in self.steps:
            while elapsed < until:
                yield interval
                elapsed += interval
        while True:
            yield self.final


class ImageProvider(Protocol):
    name: str
    # A provider's documented polling guidance, or None for the bot's [jobs] schedule. A
    # callback only cuts the current wait short, so a lost callback never delays a result.
    poll_schedule: PollSchedule | None

    def capabilities(self, tier: Tier) -> Capabilities:
        """What this provider honours for the tier; the router never asks it for more."""

    async def start(self, request: GenerationRequest, *, callback_url: str | None) -> ProviderJob:
        """Create the job. Raise ProviderRateLimited only when nothing was created."""

    async def fetch(self, provider_job_id: str) -> ProviderJob:
        """Ask the provider for the job's current state: the only source of truth."""

    async def find_created(
        self, request: GenerationRequest, *, callback_url: str | None, sent_after: float
    ) -> list[ProviderJob]:
        """After a restart cut a create short: the jobs this provider made of ``request``
        (sent with ``callback_url``) since ``sent_after``, newest first; empty when the
        provider confirms there are none. Raise CreatesNotListed when it cannot be asked."""

    async def cancel(self, provider_job_id: str) -> None:
        """Best effort: stop a job the bot no longer wants."""

    async def download(self, job: ProviderJob) -> list[Image]:
        """Fetch the finished images; providers delete them soon after (providers.md §0.4)."""

    async def authenticate_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackProof:
        """Check a callback's transport-level proof and say which provider job it names.

        Raise CallbackRejected when the request is not from the provider or is malformed.
        """

    async def check_key(self) -> str:
        """One cheap authenticated call that creates nothing; say what it showed.

        Raise ProviderAuthError when the key is refused, ProviderError when unreachable.
        """


@dataclass(frozen=True, slots=True)
class CallbackProof:
    """What an authenticated callback says: its provider job, and a delivery id to dedupe on
    when the provider gives one (Replicate's ``webhook-id``)."""

    provider_job_id: str | None
    delivery_id: str | None = None
    # False when the body itself says the job is still running (a "processing" webhook from a
    # proxy that ignores the events filter): then there is nothing to look at yet.
    may_have_ended: bool = True
