"""The core's Publisher port with Discord left out, for tests of the core alone.

End-to-end tests use the real DiscordPublisher against the fake Discord instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.delivery import Result
from bot.core.domain import Job


class RecordingPublisher:
    """The Publisher port, recording calls; ``failures`` are raised first, in order, by
    channel posts; ``private_failures`` likewise by private responses.

    Like the real publisher, it reads every attachment from its file as it posts (a missing
    file fails the post); ``uploaded`` holds what was read, by file name."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.private_failures: list[Exception] = []
        self.uploaded: dict[str, bytes] = {}
        self.images: list[tuple[int, list[str], list[str]]] = []
        self.failed_jobs: list[int] = []
        self.private: list[list[tuple[int, list[str]]]] = []
        self.progress: list[tuple[int, int | None]] = []

    async def post_in_channel(self, result: Result) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self._upload(result)
        if result.job.error is not None:
            self.failed_jobs.append(result.job.id)
        else:
            self.images.append(
                (result.job.id, [a.filename for a in result.attachments], list(result.oversized))
            )

    async def show_privately(self, results: Sequence[Result]) -> None:
        """Records each private response as (job id, file names) per result shown."""
        if self.private_failures:
            raise self.private_failures.pop(0)
        for result in results:
            self._upload(result)
        self.private.append(
            [(result.job.id, [a.filename for a in result.attachments]) for result in results]
        )

    async def publish_progress(self, job: Job, position: int | None) -> None:
        self.progress.append((job.id, position))

    def _upload(self, result: Result) -> None:
        for attachment in result.attachments:
            self.uploaded[attachment.filename] = attachment.path.read_bytes()
