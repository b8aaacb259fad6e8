"""The core's Publisher port with Discord left out, for tests of the core alone.

End-to-end tests use the real DiscordPublisher against the fake Discord instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from bot.core.delivery import ModLogReport, Posted, Result
from bot.core.domain import Job


class RecordingPublisher:
    """The Publisher port, recording calls; ``failures`` are raised first, in order, by
    channel posts; ``private_failures`` likewise by private responses (and the status);
    ``direct_failures`` by direct messages.

    Like the real publisher, it reads every attachment from its file as it posts (a missing
    file fails the post); ``uploaded`` holds what was read, by file name."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.private_failures: list[Exception] = []
        self.direct_failures: list[Exception] = []
        self.uploaded: dict[str, bytes] = {}
        # (job id, file names, names left out) per job of each channel post
        self.images: list[tuple[int, list[str], list[str]]] = []
        # the job ids of each channel message
        self.posts: list[list[int]] = []
        self.failed_jobs: list[int] = []
        self.private: list[list[tuple[int, list[str]]]] = []
        self.direct: list[list[tuple[int, list[str]]]] = []
        self.outcomes: list[tuple[int, Posted | None, list[int]]] = []
        self.progress: list[tuple[int, int | None]] = []
        self.mod_log: list[tuple[int, ModLogReport]] = []
        self._message_ids = itertools.count(9_000_000_000_000_000_001)

    async def post_in_channel(self, results: Sequence[Result]) -> Posted:
        if self.failures:
            raise self.failures.pop(0)
        for result in results:
            self._upload(result)
            self.images.append(
                (result.job.id, [a.filename for a in result.attachments], list(result.oversized))
            )
        self.posts.append([result.job.id for result in results])
        message_id = next(self._message_ids)
        return Posted(message_id, f"https://discord.com/channels/1/2/{message_id}")

    async def show_privately(self, results: Sequence[Result], *, by_setting: bool = False) -> None:
        """Records each private response as (job id, file names) per result shown."""
        if self.private_failures:
            raise self.private_failures.pop(0)
        for result in results:
            self._upload(result)
        self.private.append(
            [(result.job.id, [a.filename for a in result.attachments]) for result in results]
        )
        self.failed_jobs += [result.job.id for result in results if result.job.error is not None]

    async def send_direct(self, results: Sequence[Result]) -> None:
        if self.direct_failures:
            raise self.direct_failures.pop(0)
        for result in results:
            self._upload(result)
        self.direct.append(
            [(result.job.id, [a.filename for a in result.attachments]) for result in results]
        )
        self.failed_jobs += [result.job.id for result in results if result.job.error is not None]

    async def show_outcome(self, job: Job, posted: Posted | None, failed: Sequence[Job]) -> None:
        if self.private_failures:
            raise self.private_failures.pop(0)
        self.outcomes.append((job.id, posted, [failure.id for failure in failed]))
        self.failed_jobs += [failure.id for failure in failed]

    async def report_to_mod_log(self, channel_id: int, report: ModLogReport) -> None:
        self.mod_log.append((channel_id, report))

    async def publish_progress(self, job: Job, position: int | None) -> None:
        self.progress.append((job.id, position))

    def _upload(self, result: Result) -> None:
        for attachment in result.attachments:
            self.uploaded[attachment.filename] = attachment.path.read_bytes()
