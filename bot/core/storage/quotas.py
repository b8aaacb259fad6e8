"""Guild quota settings, limits, grants, resets, the admin audit trail and usage reports.

Every admin change is written together with its audit row in one transaction, so the trail
can never miss a change that took effect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aiosqlite

from bot.core.domain import Charge, Tier

LimitSubject = Literal["role", "member"]


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


class QuotaRepository:
    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        # One connection is shared by every coroutine: admin transactions take turns.
        self._transaction_lock = asyncio.Lock()

    async def policy(self, guild_id: int) -> GuildPolicyRecord:
        async with self._db.execute(
            "SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)
        ) as cursor:
            row = await cursor.fetchone()
        fields = [field.name for field in dataclasses.fields(GuildOverrides)]
        overrides = GuildOverrides(**{name: row[name] for name in fields}) if row else None
        limits: dict[str, dict[int, CreditLimit]] = {"role": {}, "member": {}}
        async with self._db.execute(
            "SELECT subject, subject_id, daily_credits, monthly_credits FROM credit_limits "
            "WHERE guild_id = ?",
            (guild_id,),
        ) as cursor:
            async for subject, subject_id, daily, monthly in cursor:
                limits[subject][subject_id] = CreditLimit(daily, monthly)
        tier_roles: dict[Tier, set[int]] = {}
        async with self._db.execute(
            "SELECT tier, role_id FROM tier_roles WHERE guild_id = ?", (guild_id,)
        ) as cursor:
            async for tier, role_id in cursor:
                tier_roles.setdefault(Tier(tier), set()).add(role_id)
        return GuildPolicyRecord(
            overrides=overrides or GuildOverrides(),
            role_limits=limits["role"],
            member_limits=limits["member"],
            tier_roles={tier: frozenset(roles) for tier, roles in tier_roles.items()},
        )

    async def member_reset_at(self, guild_id: int, user_id: int) -> float | None:
        async with self._db.execute(
            "SELECT reset_at FROM member_resets WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else float(row[0])

    async def granted(self, guild_id: int, user_id: int, *, since: float) -> int:
        async with self._db.execute(
            "SELECT COALESCE(SUM(credits), 0) FROM credit_grants "
            "WHERE guild_id = ? AND user_id = ? AND granted_at >= ?",
            (guild_id, user_id, since),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ admin changes

    async def update_overrides(
        self, guild_id: int, changes: Mapping[str, int | None], *, audit: AuditFields
    ) -> None:
        """Set some GuildOverrides fields (None restores the default)."""
        known = {field.name for field in dataclasses.fields(GuildOverrides)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown guild settings: {sorted(unknown)}")
        columns = list(changes)
        async with self._transaction():
            await self._db.execute(
                "INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,)
            )
            await self._db.execute(
                f"UPDATE guild_settings SET {', '.join(f'{c} = ?' for c in columns)} "  # noqa: S608 - checked names
                "WHERE guild_id = ?",
                (*changes.values(), guild_id),
            )
            await self._audit(guild_id, audit)

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
        async with self._transaction():
            if limit is None:
                await self._db.execute(
                    "DELETE FROM credit_limits WHERE guild_id = ? AND subject = ? "
                    "AND subject_id = ?",
                    (guild_id, subject, subject_id),
                )
            else:
                await self._db.execute(
                    "INSERT INTO credit_limits (guild_id, subject, subject_id, daily_credits, "
                    "monthly_credits) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (guild_id, subject, subject_id) DO UPDATE SET "
                    "daily_credits = excluded.daily_credits, "
                    "monthly_credits = excluded.monthly_credits",
                    (guild_id, subject, subject_id, limit.daily, limit.monthly),
                )
            await self._audit(guild_id, audit)

    async def set_tier_roles(
        self, guild_id: int, tier: Tier, role_ids: frozenset[int], *, audit: AuditFields
    ) -> None:
        """Restrict a tier to these roles; an empty set opens it to everyone."""
        async with self._transaction():
            await self._db.execute(
                "DELETE FROM tier_roles WHERE guild_id = ? AND tier = ?", (guild_id, tier.value)
            )
            await self._db.executemany(
                "INSERT INTO tier_roles (guild_id, tier, role_id) VALUES (?, ?, ?)",
                [(guild_id, tier.value, role_id) for role_id in sorted(role_ids)],
            )
            await self._audit(guild_id, audit)

    async def grant(self, guild_id: int, user_id: int, credits: int, *, audit: AuditFields) -> None:
        async with self._transaction():
            await self._db.execute(
                "INSERT INTO credit_grants (guild_id, user_id, credits, granted_by, granted_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (guild_id, user_id, credits, audit.actor_id, audit.now),
            )
            await self._audit(guild_id, audit)

    async def reset_member(self, guild_id: int, user_id: int, *, audit: AuditFields) -> None:
        async with self._transaction():
            await self._db.execute(
                "INSERT INTO member_resets (guild_id, user_id, reset_at) VALUES (?, ?, ?) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET reset_at = excluded.reset_at",
                (guild_id, user_id, audit.now),
            )
            await self._audit(guild_id, audit)

    async def audit_trail(self, guild_id: int, *, limit: int) -> list[AuditEntry]:
        async with self._db.execute(
            "SELECT actor_id, action, details, created_at FROM admin_audit "
            "WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [
            AuditEntry(
                actor_id=row["actor_id"],
                action=row["action"],
                details=json.loads(row["details"]),
                created_at=datetime.fromtimestamp(row["created_at"], UTC),
            )
            for row in rows
        ]

    async def usage_report(self, guild_id: int, *, since: float, top: int) -> UsageReport:
        """Outcomes, not states: ``failed`` is only a moment in a job's life (it is posted and
        becomes delivered or undeliverable), but a failure keeps its error; and every job that
        failed or was canceled, whatever its state now, had its credits released."""
        async with self._db.execute(
            "SELECT id, user_id, tier, state, credits, charge, created_at, "
            "error IS NOT NULL AS failed FROM jobs "
            "WHERE guild_id = ? AND created_at >= ? ORDER BY id",
            (guild_id, since),
        ) as cursor:
            records = await cursor.fetchall()
        rows = [tuple(record)[:-1] for record in records]  # the CSV does without the flag
        spent: dict[int, list[int]] = {}
        by_tier = dict.fromkeys(Tier, 0)
        failed = sum(record["failed"] for record in records)
        refunded = 0
        for _, user_id, tier, _, credits, charge, _ in rows:
            if charge == Charge.RELEASED:
                refunded += credits
                continue
            member = spent.setdefault(user_id, [0, 0])
            member[0] += 1
            member[1] += credits
            by_tier[Tier(tier)] += credits
        ranked = sorted(spent.items(), key=lambda item: (-item[1][1], item[0]))[:top]
        return UsageReport(
            top_members=[MemberUsage(user, jobs, credits) for user, (jobs, credits) in ranked],
            credits_by_tier=by_tier,
            jobs=len(rows),
            failed=failed,
            refunded_credits=refunded,
            rows=rows,
        )

    # ------------------------------------------------------------------ internals

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        async with self._transaction_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def _audit(self, guild_id: int, audit: AuditFields) -> None:
        await self._db.execute(
            "INSERT INTO admin_audit (guild_id, actor_id, action, details, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (guild_id, audit.actor_id, audit.action, json.dumps(audit.details), audit.now),
        )


@dataclass(frozen=True, slots=True)
class AuditFields:
    """Who made a change, what it was and when: the audit row written with the change."""

    actor_id: int
    action: str
    details: Mapping[str, object]
    now: float
