"""The storage seam: what the services ask of storage, and the values that cross it.

The services depend on these Protocols, never on a driver; the SQLite classes in this
package implement them, and another backend (PostgreSQL) implements them again.
Every method that changes a job's state applies only from the states it names, so a
transition happens at most once even when two tasks (or processes) try it together.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from bot.core.domain import (
    AspectRatio,
    DiscordTarget,
    GenerationRequest,
    Job,
    Option,
    OutputFormat,
    Reservation,
    SafetyLevel,
    SharedOrigin,
    Tier,
)

LimitSubject = Literal["role", "member"]
# A blocklist entry is a term (matched as a whole word) or a regular expression.
BlocklistKind = Literal["term", "regex"]


@dataclass(frozen=True, slots=True)
class GuildOverrides:
    """A guild's own settings; None means "the configured default"."""

    member_daily_credits: int | None = None
    member_monthly_credits: int | None = None
    guild_monthly_credits: int | None = None
    exempt_role_id: int | None = None
    max_running_per_guild: int | None = None
    max_queued_per_member: int | None = None
    max_queued_per_guild: int | None = None
    # Stored as the enums' values; None: no floor, no server default.
    safety_floor: str | None = None
    default_tier: str | None = None
    default_aspect_ratio: str | None = None
    # Where blocked prompts and safety-blocked jobs are reported; None: nowhere.
    mod_log_channel_id: int | None = None
    private_results: int = 0


@dataclass(frozen=True, slots=True)
class OptionDefaults:
    """Defaults for the /imagine options a member may leave out; None: not set here, so the
    next level decides (the member's own, then the server's, then the bot's)."""

    tier: Tier | None = None
    aspect_ratio: AspectRatio | None = None
    safety: SafetyLevel | None = None
    output_format: OutputFormat | None = None


@dataclass(frozen=True, slots=True)
class CreditLimit:
    daily: int
    monthly: int


@dataclass(frozen=True, slots=True)
class GuildPolicyRecord:
    """Everything stored about one guild's quotas, read in one go."""

    overrides: GuildOverrides
    role_limits: Mapping[int, CreditLimit]
    member_limits: Mapping[int, CreditLimit]
    tier_roles: Mapping[Tier, frozenset[int]]
    # Where /imagine and the result buttons work; empty: everywhere.
    allowed_channels: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class AuditFields:
    """Who made a change, what it was and when: the audit row written with the change."""

    actor_id: int
    action: str
    details: Mapping[str, object]
    now: float


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor_id: int
    action: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberUsage:
    user_id: int
    jobs: int
    credits: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A guild's activity since a moment: who spent what, on which tier, and what failed."""

    top_members: list[MemberUsage]
    credits_by_tier: dict[Tier, int]
    jobs: int
    failed: int
    refunded_credits: int
    rows: list[tuple[int, int, str, str, int, str, float]]  # for the CSV export
    # Jobs the provider's safety filter refused, per member, and which jobs they were (the
    # CSV marks them): admins see who keeps running into the filter.
    safety_blocked: Mapping[int, int] = field(default_factory=dict)
    safety_blocked_job_ids: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class BlocklistEntry:
    """One entry of a guild's blocklist; a term is stored normalised, as it is matched."""

    id: int
    kind: BlocklistKind
    text: str
    added_by: int
    added_at: datetime


class JobStore(Protocol):
    """The jobs table: the queue, each job's state, and the credit ledger (a job carries its
    credits and whether they are reserved, committed or released).

    Each ``mark_*`` that changes state returns the job as the change left it, or None when
    the job was not in a state the change applies from.
    """

    async def create(
        self,
        request: GenerationRequest,
        target: DiscordTarget,
        *,
        callback_token: str,
        now: float,
        reservation: Reservation,
        remix_of: int | None = None,
        shared_from: SharedOrigin | None = None,
    ) -> list[Job]:
        """``reservation.jobs`` queued jobs holding their credits, in id order, or none when
        a limit says no; checking the limits and storing the jobs is one atomic step."""
        ...

    async def usage(self, *, guild_id: int, user_id: int | None, since: float) -> int:
        """Credits reserved or committed since ``since`` by a member (None: the guild)."""
        ...

    async def queued_count(self, *, guild_id: int, user_id: int | None) -> int: ...

    async def get(self, job_id: int) -> Job | None: ...

    async def unfinished(self) -> list[Job]:
        """Jobs in no final state, oldest first."""
        ...

    async def queued(self) -> list[Job]: ...

    async def member_jobs(self, *, guild_id: int, user_id: int) -> list[Job]: ...

    async def request_jobs(self, interaction_token: str) -> list[Job]: ...

    async def mark_private_delivery(self, job_id: int, *, now: float) -> None: ...

    async def mark_submitting(
        self,
        job_id: int,
        *,
        provider: str,
        not_applied: Collection[Option] = (),
        now: float,
    ) -> Job | None: ...

    async def mark_not_submitted(
        self, job_id: int, *, maybe_created_at: Collection[str] = (), now: float
    ) -> Job | None: ...

    async def mark_submitted(
        self, job_id: int, *, provider: str, provider_job_id: str, now: float
    ) -> Job | None:
        """None also when another job already holds that provider job."""
        ...

    async def mark_succeeded(
        self,
        job_id: int,
        *,
        image_paths: list[Path],
        effective_prompt: str | None = None,
        output_format: OutputFormat | None = None,
        credits: int | None = None,
        now: float,
    ) -> Job | None: ...

    async def mark_failed(
        self, job_id: int, *, error: str, now: float, outcome: str | None = None
    ) -> Job | None:
        """``outcome``: 'safety_blocked' when the provider's filter refused the job."""

    async def mark_canceled(self, job_id: int, *, now: float) -> Job | None: ...

    async def recent_jobs(self, *, guild_id: int, user_id: int, limit: int) -> list[Job]: ...

    async def take_undelivered(self, *, guild_id: int, user_id: int, now: float) -> list[Job]: ...

    async def mark_delivered(
        self, job_id: int, *, now: float, message_id: int | None = None
    ) -> Job | None: ...

    async def mark_undeliverable(self, job_id: int, *, reason: str, now: float) -> Job | None: ...

    async def remember_delivery(
        self, *, provider: str, delivery_id: str, job_id: int, now: float
    ) -> bool:
        """False if this callback delivery was recorded before (a replay or retry)."""
        ...


class GuildSettingsStore(Protocol):
    """A guild's quota settings: overrides, credit limits and tier roles.

    Read on every reservation, changed only by admins, so a service may cache what ``policy``
    returns as long as it forgets it on every change made here. Each change is written with
    its audit row, atomically.
    """

    async def policy(self, guild_id: int) -> GuildPolicyRecord: ...

    async def update_overrides(
        self, guild_id: int, changes: Mapping[str, int | str | None], *, audit: AuditFields
    ) -> None:
        """Set some GuildOverrides fields (None restores the default)."""
        ...

    async def set_limit(
        self,
        guild_id: int,
        subject: LimitSubject,
        subject_id: int,
        limit: CreditLimit | None,
        *,
        audit: AuditFields,
    ) -> None:
        """Set (or with None remove) a role's or a member's credit limit."""
        ...

    async def set_tier_roles(
        self, guild_id: int, tier: Tier, role_ids: frozenset[int], *, audit: AuditFields
    ) -> None:
        """Restrict a tier to these roles; an empty set opens it to everyone."""
        ...

    async def set_channel_allowed(
        self, guild_id: int, channel_id: int, allowed: bool, *, audit: AuditFields
    ) -> bool:
        """List (``allowed``) or unlist a channel for /imagine; False, with nothing written,
        when it already was (or was not) listed, so the trail records only real changes."""
        ...


class QuotaStore(GuildSettingsStore, Protocol):
    """Everything quotas keep beside the jobs: guild settings, per-member grants and resets
    (which the job store's reservation reads in its own statement), the audit trail and
    usage reports."""

    async def member_reset_at(self, guild_id: int, user_id: int) -> float | None: ...

    async def granted(self, guild_id: int, user_id: int, *, since: float) -> int: ...

    async def grant(
        self, guild_id: int, user_id: int, credits: int, *, audit: AuditFields
    ) -> None: ...

    async def reset_member(self, guild_id: int, user_id: int, *, audit: AuditFields) -> None: ...

    async def audit_trail(self, guild_id: int, *, limit: int) -> list[AuditEntry]: ...

    async def usage_report(self, guild_id: int, *, since: float, top: int) -> UsageReport: ...


class BlocklistStore(Protocol):
    """Each guild's blocklist. Read on every submission, changed only by admins, so a service
    may cache what ``entries`` returns as long as it forgets it on every change made here.
    Each change is written with its audit row, atomically; the row's details name the entry
    (its id, kind and text) besides what ``audit`` says."""

    async def entries(self, guild_id: int) -> list[BlocklistEntry]:
        """The guild's entries, oldest first."""
        ...

    async def add(
        self,
        guild_id: int,
        kind: BlocklistKind,
        text: str,
        *,
        max_entries: int,
        audit: AuditFields,
    ) -> BlocklistEntry | Literal["full", "duplicate"]:
        """The new entry; or "full" when the guild has ``max_entries`` already, "duplicate"
        when the same entry is there: then nothing is written."""
        ...

    async def remove(
        self, guild_id: int, entry_id: int, *, audit: AuditFields
    ) -> BlocklistEntry | None:
        """The removed entry, or None (nothing written) when the guild has no such entry."""
        ...


class MemberDefaultsStore(Protocol):
    """Each member's own defaults, per guild. Read once per /imagine (one primary-key row);
    written only by the member, so nothing is audited."""

    async def member_defaults(self, guild_id: int, user_id: int) -> OptionDefaults:
        """The member's defaults; all None when they have set none."""
        ...

    async def save_member_defaults(
        self, guild_id: int, user_id: int, defaults: OptionDefaults, *, now: float
    ) -> None:
        """Replace the member's defaults with these (all None forgets them)."""
        ...
