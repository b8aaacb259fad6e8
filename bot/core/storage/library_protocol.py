"""The prompt library's storage seam (issue 12): the values that cross it and its Protocol.

Kept apart from ``protocols.py`` (the jobs' and the admin settings' seam) as the library is a
product of its own; the same rule holds: the service depends on this Protocol, the SQLite
class in ``library.py`` implements it, and another engine would implement it again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from bot.core.domain import AspectRatio, Option, OutputFormat, SafetyLevel, Tier
from bot.core.storage.protocols import AuditFields


class Sort(enum.StrEnum):
    """The orders members browse in; ties fall to the newer entry."""

    NEWEST = "newest"
    MOST_LIKED = "liked"
    MOST_USED = "used"


@dataclass(frozen=True, slots=True)
class Recipe:
    """What makes the image again: the prompt and the options the job actually ran with."""

    prompt: str
    negative_prompt: str | None
    tier: Tier
    aspect_ratio: AspectRatio
    safety: SafetyLevel
    output_format: OutputFormat
    seed: int | None
    chosen: frozenset[Option] = frozenset()


@dataclass(frozen=True, slots=True)
class NewEntry:
    """An entry as the service hands it to storage; its image files are already in place."""

    guild_id: int
    author_id: int
    author_name: str
    job_id: int
    title: str
    tags: tuple[str, ...]
    recipe: Recipe
    image_name: str
    thumbnail_name: str
    width: int
    height: int
    created_at: float


@dataclass(frozen=True, slots=True)
class LibraryEntry:
    id: int
    guild_id: int
    author_id: int
    author_name: str
    job_id: int | None
    title: str
    tags: tuple[str, ...]
    recipe: Recipe
    image_name: str
    thumbnail_name: str
    width: int
    height: int
    created_at: datetime
    hidden: bool
    likes: int
    uses: int
    gallery_channel_id: int | None = None
    gallery_message_id: int | None = None


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries a browse, search or gallery page shows; None: any."""

    query: str | None = None
    tag: str | None = None
    tier: Tier | None = None
    author_id: int | None = None


@dataclass(frozen=True, slots=True)
class Browse:
    """A browse as it started: the entries it found, in order, and what it was."""

    id: int
    guild_id: int
    user_id: int
    entry_ids: tuple[int, ...]
    heading: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Like:
    """What a Like click did: whether the member now likes the entry, and its count."""

    liked: bool
    likes: int


@dataclass(frozen=True, slots=True)
class ReportedEntry:
    entry: LibraryEntry
    reports: int
    last_reason: str
    last_reported_at: datetime


@dataclass(frozen=True, slots=True)
class LibrarySettings:
    gallery_channel_id: int | None = None
    web_gallery: bool = False
    guild_name: str = ""


@dataclass(frozen=True, slots=True)
class ForgottenMember:
    """What forgetting a member removed: their entries (whose files the service deletes) and
    how many of their likes on other entries."""

    entries: tuple[LibraryEntry, ...]
    likes: int


class LibraryStore(Protocol):
    async def add(self, entry: NewEntry) -> LibraryEntry | Literal["barred", "shared"]:
        """Store a new entry unless its author is barred from sharing or the job already has
        an entry (both checked in the same transaction as the insert)."""
        ...

    async def get(self, entry_id: int) -> LibraryEntry | None: ...

    async def entry_for_job(self, guild_id: int, job_id: int) -> LibraryEntry | None: ...

    async def matching_ids(
        self, guild_id: int, where: EntryFilter, sort: Sort, *, limit: int
    ) -> list[int]:
        """Visible entries' ids in order: by bm25 rank (title above tags above prompt) when
        ``where.query`` is set, else by ``sort``."""
        ...

    async def page(
        self, guild_id: int, where: EntryFilter, sort: Sort, *, offset: int, limit: int
    ) -> tuple[list[LibraryEntry], int]:
        """One page of visible entries in the same order, and how many there are in all."""
        ...

    async def author_entries(self, guild_id: int, author_id: int) -> list[LibraryEntry]: ...

    async def tags(self, guild_id: int, prefix: str, *, limit: int) -> list[str]:
        """Tags of visible entries starting with ``prefix``, most used first."""
        ...

    async def toggle_like(self, entry_id: int, user_id: int, *, now: float) -> Like | None:
        """Like the entry, or take the like back; None when the entry is gone."""
        ...

    async def count_use(self, entry_id: int) -> None: ...

    async def report(self, entry_id: int, user_id: int, reason: str, *, now: float) -> bool:
        """Record a report; False when the member had already reported the entry (their
        reason is updated)."""
        ...

    async def reported(self, guild_id: int, *, limit: int) -> list[ReportedEntry]: ...

    async def set_hidden(
        self, guild_id: int, entry_id: int, hidden: bool, *, audit: AuditFields | None
    ) -> LibraryEntry | None: ...

    async def delete(
        self, guild_id: int, entry_id: int, *, audit: AuditFields | None
    ) -> LibraryEntry | None: ...

    async def forget_member(
        self, guild_id: int, user_id: int, *, audit: AuditFields | None
    ) -> ForgottenMember: ...

    async def set_barred(
        self, guild_id: int, user_id: int, barred: bool, *, audit: AuditFields
    ) -> bool:
        """Whether that changed anything."""
        ...

    async def is_barred(self, guild_id: int, user_id: int) -> bool: ...

    async def set_gallery_post(self, entry_id: int, channel_id: int, message_id: int) -> None: ...

    async def start_browse(
        self,
        guild_id: int,
        user_id: int,
        entry_ids: Sequence[int],
        heading: str,
        *,
        now: float,
        forget_before: float,
    ) -> Browse:
        """Store a browse; browses started before ``forget_before`` are removed meanwhile."""
        ...

    async def browse(self, browse_id: int) -> Browse | None: ...

    async def settings(self, guild_id: int) -> LibrarySettings: ...

    async def set_gallery_channel(
        self, guild_id: int, channel_id: int | None, *, audit: AuditFields
    ) -> None: ...

    async def set_web_gallery(
        self, guild_id: int, enabled: bool, *, guild_name: str, audit: AuditFields
    ) -> None: ...
