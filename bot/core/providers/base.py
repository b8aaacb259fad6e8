"""The one small interface every image provider implements."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.core.domain import GenerationRequest
from bot.core.errors import ProviderError
from bot.core.images import Image


class ProviderStatus(enum.Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProviderJob:
    """The provider's own view of one job, as last confirmed by the provider."""

    id: str
    status: ProviderStatus
    output_urls: tuple[str, ...] = ()
    failure: ProviderError | None = None


class ImageProvider(Protocol):
    name: str

    async def start(self, request: GenerationRequest, *, callback_url: str | None) -> ProviderJob:
        """Create the job. Raise ProviderRateLimited only when nothing was created."""

    async def fetch(self, provider_job_id: str) -> ProviderJob:
        """Ask the provider for the job's current state: the only source of truth."""

    async def cancel(self, provider_job_id: str) -> None:
        """Best effort: stop a job the bot no longer wants."""

    async def download(self, job: ProviderJob) -> list[Image]:
        """Fetch the finished images; providers delete them soon after (providers.md §0.4)."""

    async def authenticate_callback(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """Check a callback's transport-level proof; return its delivery id for de-duplication.

        Raise CallbackRejected when the request is not from the provider.
        """
