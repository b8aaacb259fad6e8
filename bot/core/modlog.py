"""The mod log: blocked prompts and safety-blocked jobs, reported to a server's chosen channel.

Reports are best effort and never in the member's way: each is posted by a task of its own, so
neither the member's refusal nor a job's delivery waits for it, and a mod-log channel that is
gone or closed to the bot costs only a warning in the log.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from bot.core.clock import Clock
from bot.core.delivery import ModLogReport, Publisher
from bot.core.domain import Job, Member
from bot.core.errors import PromptBlocked
from bot.core.quotas import QuotaService
from bot.core.storage.library_protocol import LibraryEntry

log = logging.getLogger(__name__)


class ModLog:
    def __init__(self, publisher: Publisher, quotas: QuotaService, *, clock: Clock) -> None:
        self._publisher = publisher
        self._quotas = quotas
        self._clock = clock
        # Reports being posted: kept so a task is not collected mid-post, awaited by settle().
        self._posting: set[asyncio.Task[None]] = set()

    def prompt_blocked(self, member: Member, refusal: PromptBlocked, prompt: str) -> None:
        """A prompt the server's blocklist refused: which entry, and the prompt."""
        self._report(
            member.guild_id,
            ModLogReport(
                title="Prompt refused by the blocklist",
                user_id=member.user_id,
                at=self._now(),
                prompt=prompt,
                details=(("Rule", f"blocklist entry #{refusal.entry_id} ({refusal.kind})"),),
            ),
        )

    def safety_blocked(self, job: Job) -> None:
        """A job the provider's safety filter refused: which job, which provider, the prompt."""
        guild_id = job.target.guild_id
        if guild_id is None:  # no server, so no mod log
            return
        self._report(
            guild_id,
            ModLogReport(
                title="Job blocked by the image service's safety filter",
                user_id=job.target.user_id,
                at=self._now(),
                prompt=job.request.prompt,
                details=(("Job", f"#{job.id}"), ("Provider", job.provider or "unknown")),
            ),
        )

    def entry_reported(self, member: Member, entry: LibraryEntry, reason: str) -> None:
        """A member reported a shared prompt: which entry, whose, why, and its prompt."""
        self._report(
            member.guild_id,
            ModLogReport(
                title="Shared prompt reported",
                user_id=member.user_id,
                at=self._now(),
                prompt=entry.recipe.prompt,
                details=(
                    ("Entry", f"#{entry.id}, shared by <@{entry.author_id}>"),
                    ("Moderate", f"/imagine-admin library hide or delete, entry {entry.id}"),
                ),
                quoted=(("Title", entry.title), ("Reason", reason or "None given")),
            ),
        )

    async def settle(self) -> None:
        """Wait for the reports being posted (at shutdown)."""
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def _report(self, guild_id: int, report: ModLogReport) -> None:
        task = asyncio.create_task(self._post(guild_id, report), name="mod-log report")
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post(self, guild_id: int, report: ModLogReport) -> None:
        try:
            channel_id = (await self._quotas.policy(guild_id)).mod_log_channel_id
            if channel_id is None:
                return
            await self._publisher.report_to_mod_log(channel_id, report)
        except Exception:
            log.warning("guild %d: a mod-log report could not be posted", guild_id, exc_info=True)
