"""The core's Publisher port with Discord left out, for tests of the core alone.

End-to-end tests use the real DiscordPublisher against the fake Discord instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.delivery import Attachment
from bot.core.domain import Job


class RecordingPublisher:
    """The Publisher port, recording calls; ``failures`` are raised first, in order."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.images: list[tuple[int, list[str], list[str]]] = []
        self.failed_jobs: list[int] = []
        self.progress: list[tuple[int, int | None]] = []

    async def publish_images(
        self, job: Job, attachments: Sequence[Attachment], oversized: Sequence[str]
    ) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.images.append((job.id, [a.filename for a in attachments], list(oversized)))

    async def publish_failure(self, job: Job) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.failed_jobs.append(job.id)

    async def publish_progress(self, job: Job, position: int | None) -> None:
        self.progress.append((job.id, position))
