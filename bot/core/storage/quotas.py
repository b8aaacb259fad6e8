"""Guild quota settings, limits, grants, resets, the admin audit trail and usage reports.

Every admin change is written together with its audit row in one transaction, so the trail
can never miss a change that took effect.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime

import aiosqlite

from bot.core.domain import Charge, Tier
from bot.core.storage.database import Statement, read_together, transaction, write_atomically
from bot.core.storage.protocols import (
    AuditEntry,
    AuditFields,
    CreditLimit,
    GuildOverrides,
    GuildPolicyRecord,
    LimitSubject,
    MemberUsage,
    UsageReport,
)

# The records live with the Protocols; they are importable from here too, as before.
__all__ = [
    "AuditEntry",
    "AuditFields",
    "CreditLimit",
    "GuildOverrides",
    "GuildPolicyRecord",
    "LimitSubject",
    "MemberUsage",
    "QuotaRepository",
    "UsageReport",
    "audit_row",
]


class QuotaRepository:
    """The SQLite QuotaStore."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def policy(self, guild_id: int) -> GuildPolicyRecord:
        """Four reads in one round trip and one snapshot. An admin change is one transaction
        on the connection's thread too (``write_atomically``), so half of one (a tier's roles
        deleted, not yet inserted) is never seen."""
        settings, limit_rows, role_rows, channel_rows = await read_together(
            self._db,
            [
                ("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,)),
                (
                    "SELECT subject, subject_id, daily_credits, monthly_credits "
                    "FROM credit_limits WHERE guild_id = ?",
                    (guild_id,),
                ),
                ("SELECT tier, role_id FROM tier_roles WHERE guild_id = ?", (guild_id,)),
                ("SELECT channel_id FROM allowed_channels WHERE guild_id = ?", (guild_id,)),
            ],
        )
        fields = [field.name for field in dataclasses.fields(GuildOverrides)]
        overrides = [GuildOverrides(**{name: row[name] for name in fields}) for row in settings]
        limits: dict[str, dict[int, CreditLimit]] = {"role": {}, "member": {}}
        for subject, subject_id, daily, monthly in limit_rows:
            limits[subject][subject_id] = CreditLimit(daily, monthly)
        tier_roles: dict[Tier, set[int]] = {}
        for tier, role_id in role_rows:
            tier_roles.setdefault(Tier(tier), set()).add(role_id)
        return GuildPolicyRecord(
            overrides=overrides[0] if overrides else GuildOverrides(),
            role_limits=limits["role"],
            member_limits=limits["member"],
            tier_roles={tier: frozenset(roles) for tier, roles in tier_roles.items()},
            allowed_channels=frozenset(int(row[0]) for row in channel_rows),
        )

    async def member_reset_at(self, guild_id: int, user_id: int) -> float | None:
        rows = await self._db.execute_fetchall(
            "SELECT reset_at FROM member_resets WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        )
        return next((float(row[0]) for row in rows), None)

    async def granted(self, guild_id: int, user_id: int, *, since: float) -> int:
        [row] = await self._db.execute_fetchall(
            "SELECT COALESCE(SUM(credits), 0) FROM credit_grants "
            "WHERE guild_id = ? AND user_id = ? AND granted_at >= ?",
            (guild_id, user_id, since),
        )
        return int(row[0])

    # ------------------------------------------------------------------ admin changes

    async def update_overrides(
        self, guild_id: int, changes: Mapping[str, int | str | None], *, audit: AuditFields
    ) -> None:
        """Set some GuildOverrides fields (None restores the default)."""
        known = {field.name for field in dataclasses.fields(GuildOverrides)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown guild settings: {sorted(unknown)}")
        columns = list(changes)
        upsert = (
            f"INSERT INTO guild_settings (guild_id, {', '.join(columns)}) "  # noqa: S608 - checked names
            f"VALUES (?{', ?' * len(columns)}) ON CONFLICT (guild_id) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in columns)
        )
        await write_atomically(
            self._db, [(upsert, (guild_id, *changes.values())), audit_row(guild_id, audit)]
        )

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
        change: Statement = (
            (
                "DELETE FROM credit_limits WHERE guild_id = ? AND subject = ? AND subject_id = ?",
                (guild_id, subject, subject_id),
            )
            if limit is None
            else (
                "INSERT INTO credit_limits (guild_id, subject, subject_id, daily_credits, "
                "monthly_credits) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (guild_id, subject, subject_id) DO UPDATE SET "
                "daily_credits = excluded.daily_credits, "
                "monthly_credits = excluded.monthly_credits",
                (guild_id, subject, subject_id, limit.daily, limit.monthly),
            )
        )
        await write_atomically(self._db, [change, audit_row(guild_id, audit)])

    async def set_tier_roles(
        self, guild_id: int, tier: Tier, role_ids: frozenset[int], *, audit: AuditFields
    ) -> None:
        """Restrict a tier to these roles; an empty set opens it to everyone."""
        await write_atomically(
            self._db,
            [
                ("DELETE FROM tier_roles WHERE guild_id = ? AND tier = ?", (guild_id, tier.value)),
                *(
                    (
                        "INSERT INTO tier_roles (guild_id, tier, role_id) VALUES (?, ?, ?)",
                        (guild_id, tier.value, role_id),
                    )
                    for role_id in sorted(role_ids)
                ),
                audit_row(guild_id, audit),
            ],
        )

    async def set_channel_allowed(
        self, guild_id: int, channel_id: int, allowed: bool, *, audit: AuditFields
    ) -> bool:
        """List or unlist a channel; the audit row is written only when a row changed, in the
        same transaction (the change's own row count decides, so two admins racing to add the
        same channel leave one row and one audit entry)."""

        def change(sqlite: sqlite3.Connection) -> bool:
            if allowed:
                cursor = sqlite.execute(
                    "INSERT INTO allowed_channels (guild_id, channel_id, added_by, added_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO NOTHING",
                    (guild_id, channel_id, audit.actor_id, audit.now),
                )
            else:
                cursor = sqlite.execute(
                    "DELETE FROM allowed_channels WHERE guild_id = ? AND channel_id = ?",
                    (guild_id, channel_id),
                )
            if cursor.rowcount == 0:
                return False
            sqlite.execute(*audit_row(guild_id, audit))
            return True

        return await transaction(self._db, change)

    async def grant(self, guild_id: int, user_id: int, credits: int, *, audit: AuditFields) -> None:
        grant = (
            "INSERT INTO credit_grants (guild_id, user_id, credits, granted_by, granted_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (guild_id, user_id, credits, audit.actor_id, audit.now),
        )
        await write_atomically(self._db, [grant, audit_row(guild_id, audit)])

    async def reset_member(self, guild_id: int, user_id: int, *, audit: AuditFields) -> None:
        reset = (
            "INSERT INTO member_resets (guild_id, user_id, reset_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, user_id) DO UPDATE SET reset_at = excluded.reset_at",
            (guild_id, user_id, audit.now),
        )
        await write_atomically(self._db, [reset, audit_row(guild_id, audit)])

    async def audit_trail(self, guild_id: int, *, limit: int) -> list[AuditEntry]:
        rows = await self._db.execute_fetchall(
            "SELECT actor_id, action, details, created_at FROM admin_audit "
            "WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        )
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
        records = list(
            await self._db.execute_fetchall(
                "SELECT id, user_id, tier, state, credits, charge, created_at, "
                "error IS NOT NULL AS failed, outcome FROM jobs "
                "WHERE guild_id = ? AND created_at >= ? ORDER BY id",
                (guild_id, since),
            )
        )
        rows = [tuple(record)[:-2] for record in records]  # the CSV does without the flags
        blocked = [record for record in records if record["outcome"] == "safety_blocked"]
        safety_blocked: dict[int, int] = {}
        for record in blocked:
            safety_blocked[record["user_id"]] = safety_blocked.get(record["user_id"], 0) + 1
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
            safety_blocked=safety_blocked,
            safety_blocked_job_ids=frozenset(record["id"] for record in blocked),
        )


def audit_row(guild_id: int, audit: AuditFields) -> Statement:
    """The audit row written in the same transaction as the change it records."""
    return (
        "INSERT INTO admin_audit (guild_id, actor_id, action, details, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (guild_id, audit.actor_id, audit.action, json.dumps(audit.details), audit.now),
    )
