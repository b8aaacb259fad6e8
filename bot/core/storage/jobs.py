"""Job rows: every state change is one conditional UPDATE, so no transition happens twice."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.domain import (
    AspectRatio,
    Charge,
    DiscordTarget,
    GenerationRequest,
    Job,
    JobState,
    OutputFormat,
    Reservation,
    SafetyLevel,
    Tier,
)


def _to_datetime(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _row_to_job(row: aiosqlite.Row) -> Job:
    return Job(
        id=row["id"],
        state=JobState(row["state"]),
        request=GenerationRequest(
            prompt=row["prompt"],
            tier=Tier(row["tier"]),
            aspect_ratio=AspectRatio(row["aspect_ratio"]),
            safety=SafetyLevel(row["safety"]),
            output_format=OutputFormat(row["output_format"]),
        ),
        target=DiscordTarget(
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            application_id=row["application_id"],
            interaction_token=row["interaction_token"],
            interaction_expires_at=datetime.fromtimestamp(row["interaction_expires_at"], UTC),
            attachment_size_limit=row["attachment_size_limit"],
        ),
        provider=row["provider"],
        provider_job_id=row["provider_job_id"],
        callback_token=row["callback_token"],
        attempts=row["attempts"],
        error=row["error"],
        delivery_error=row["delivery_error"],
        image_paths=tuple(Path(p) for p in json.loads(row["image_paths"])),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        updated_at=datetime.fromtimestamp(row["updated_at"], UTC),
        credits=row["credits"],
        charge=Charge(row["charge"]),
        submitted_at=_to_datetime(row["submitted_at"]),
        finished_at=_to_datetime(row["finished_at"]),
        delivered_at=_to_datetime(row["delivered_at"]),
    )


# Credits used by a member (:user) or, with :user NULL, by the whole guild, since :since.
_USED = """
    (SELECT COALESCE(SUM(credits), 0) FROM jobs
     WHERE guild_id = :guild AND (:user IS NULL OR user_id = :user)
       AND created_at >= :since AND charge != :released)
"""
_QUEUED = """
    (SELECT COUNT(*) FROM jobs
     WHERE guild_id = :guild AND (:user IS NULL OR user_id = :user) AND state = :queued)
"""
_GRANTED = """
    (SELECT COALESCE(SUM(credits), 0) FROM credit_grants
     WHERE guild_id = :guild AND user_id = :user AND granted_at >= {since})
"""


def _used(user: str, since: str) -> str:
    return _USED.replace(":user", user).replace(":since", since)


# The reservation's conditions; NULL limits are unlimited. Parameters are Reservation's fields.
_WITHIN_LIMITS = f"""
    (:max_queued_per_member IS NULL
        OR {_QUEUED} < :max_queued_per_member)
    AND (:max_queued_per_guild IS NULL
        OR {_QUEUED.replace(":user", "NULL")} < :max_queued_per_guild)
    AND (:member_daily IS NULL
        OR {_used(":user", ":member_counted_since_day")} + :credits
           <= :member_daily + {_GRANTED.format(since=":day_start")})
    AND (:member_monthly IS NULL
        OR {_used(":user", ":member_counted_since_month")} + :credits
           <= :member_monthly + {_GRANTED.format(since=":month_start")})
    AND (:guild_monthly IS NULL
        OR {_used("NULL", ":month_start")} + :credits <= :guild_monthly)
"""


class Expression(str):
    """A column value computed by SQLite from the row, in the same UPDATE."""


_INCREMENT = Expression("attempts + 1")
_COMMIT_IF_SUCCEEDED = Expression(
    f"CASE state WHEN '{JobState.SUCCEEDED.value}' THEN '{Charge.COMMITTED.value}' ELSE charge END"
)
_IN_PROGRESS = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED)


class JobRepository:
    """All SQL about jobs. Methods that change state return whether the row actually moved."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def create(
        self,
        request: GenerationRequest,
        target: DiscordTarget,
        *,
        callback_token: str,
        now: float,
        reservation: Reservation,
    ) -> Job | None:
        """Store a queued job holding its credits, or nothing (None) if a limit says no.

        One INSERT … SELECT … WHERE: SQLite runs each statement atomically, so checking the
        limits and taking the credits cannot be split by a concurrent request (issue 3: 100
        simultaneous requests with 5 credits left yield exactly 5 jobs).
        """
        cursor = await self._db.execute(
            f"""
            INSERT INTO jobs (state, prompt, tier, aspect_ratio, safety, output_format,
                              guild_id, channel_id, user_id, application_id, interaction_token,
                              interaction_expires_at, attachment_size_limit, callback_token,
                              created_at, updated_at, credits, charge)
            SELECT :queued, :prompt, :tier, :aspect_ratio, :safety, :output_format,
                   :guild, :channel, :user, :application, :interaction_token,
                   :interaction_expires_at, :attachment_size_limit, :callback_token,
                   :now, :now, :credits, :reserved
            WHERE {_WITHIN_LIMITS}
            """,
            {
                "queued": JobState.QUEUED.value,
                "prompt": request.prompt,
                "tier": request.tier.value,
                "aspect_ratio": request.aspect_ratio.value,
                "safety": request.safety.value,
                "output_format": request.output_format.value,
                "guild": target.guild_id,
                "channel": target.channel_id,
                "user": target.user_id,
                "application": target.application_id,
                "interaction_token": target.interaction_token,
                "interaction_expires_at": target.interaction_expires_at.timestamp(),
                "attachment_size_limit": target.attachment_size_limit,
                "callback_token": callback_token,
                "now": now,
                "reserved": Charge.RESERVED.value,
                "released": Charge.RELEASED.value,
                **dataclasses.asdict(reservation),
            },
        )
        job_id = cursor.lastrowid if cursor.rowcount == 1 else None
        await cursor.close()
        return None if job_id is None else await self.get(job_id)

    async def usage(self, *, guild_id: int, user_id: int | None, since: float) -> int:
        """Credits reserved or committed since ``since`` by a member (or a whole guild)."""
        async with self._db.execute(
            f"SELECT {_USED} AS used",
            {"guild": guild_id, "user": user_id, "since": since, "released": Charge.RELEASED.value},
        ) as cursor:
            row = await cursor.fetchone()
        return int(row["used"]) if row else 0

    async def queued_count(self, *, guild_id: int, user_id: int | None) -> int:
        async with self._db.execute(
            f"SELECT {_QUEUED} AS queued",
            {"guild": guild_id, "user": user_id, "queued": JobState.QUEUED.value},
        ) as cursor:
            row = await cursor.fetchone()
        return int(row["queued"]) if row else 0

    async def get(self, job_id: int) -> Job | None:
        async with self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _row_to_job(row)

    async def unfinished(self) -> list[Job]:
        """Every job not yet delivered, given up on or canceled, oldest first: what a restart
        resumes."""
        final = [state.value for state in JobState if state.is_final]
        return await self._select(
            f"SELECT * FROM jobs WHERE state NOT IN ({','.join('?' * len(final))}) ORDER BY id",  # noqa: S608
            tuple(final),
        )

    async def queued(self) -> list[Job]:
        """Every queued job, oldest first: the scheduler orders them fairly."""
        return await self._select(
            "SELECT * FROM jobs WHERE state = ? ORDER BY id", (JobState.QUEUED.value,)
        )

    async def member_jobs(self, *, guild_id: int, user_id: int) -> list[Job]:
        """A member's jobs still queued or at a provider, oldest first (for /queue)."""
        return await self._select(
            "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? AND state IN (?, ?, ?) "
            "ORDER BY id",
            (guild_id, user_id, *(state.value for state in _IN_PROGRESS)),
        )

    async def mark_submitting(self, job_id: int, *, provider: str, now: float) -> bool:
        """Record that a create is about to be sent, before it is sent."""
        return await self._transition(
            job_id,
            (JobState.QUEUED,),
            JobState.SUBMITTING,
            now,
            provider=provider,
            attempts=_INCREMENT,
        )

    async def mark_not_submitted(self, job_id: int, *, now: float) -> bool:
        """The provider certainly created nothing (429, refused connection): queued again."""
        return await self._transition(job_id, (JobState.SUBMITTING,), JobState.QUEUED, now)

    async def mark_submitted(
        self, job_id: int, *, provider: str, provider_job_id: str, now: float
    ) -> bool:
        return await self._transition(
            job_id,
            (JobState.SUBMITTING,),
            JobState.SUBMITTED,
            now,
            provider=provider,
            provider_job_id=provider_job_id,
            submitted_at=now,
        )

    async def mark_succeeded(self, job_id: int, *, image_paths: list[Path], now: float) -> bool:
        return await self._transition(
            job_id,
            (JobState.SUBMITTED,),
            JobState.SUCCEEDED,
            now,
            image_paths=json.dumps([str(p) for p in image_paths]),
            finished_at=now,
        )

    async def mark_failed(self, job_id: int, *, error: str, now: float) -> bool:
        """Failed, timed out or blocked: the member gets the credits back."""
        return await self._transition(
            job_id,
            _IN_PROGRESS,
            JobState.FAILED,
            now,
            error=error,
            finished_at=now,
            charge=Charge.RELEASED.value,
        )

    async def mark_canceled(self, job_id: int, *, now: float) -> bool:
        """Canceled by the member before it succeeded: refunded.

        Not from ``submitting``: a create may be in flight, and its answer must be recorded.
        """
        return await self._transition(
            job_id,
            (JobState.QUEUED, JobState.SUBMITTED),
            JobState.CANCELED,
            now,
            finished_at=now,
            charge=Charge.RELEASED.value,
        )

    async def mark_delivered(self, job_id: int, *, now: float) -> bool:
        """Posted: a succeeded job's credits are now spent for good."""
        return await self._transition(
            job_id,
            (JobState.SUCCEEDED, JobState.FAILED),
            JobState.DELIVERED,
            now,
            delivered_at=now,
            charge=_COMMIT_IF_SUCCEEDED,
        )

    async def mark_undeliverable(self, job_id: int, *, reason: str, now: float) -> bool:
        """Give up posting; the images stay on disk and the reason is kept beside any error.

        The images exist and the provider billed them, so a succeeded job's credits are spent.
        """
        return await self._transition(
            job_id,
            (JobState.SUCCEEDED, JobState.FAILED),
            JobState.UNDELIVERABLE,
            now,
            delivery_error=reason,
            charge=_COMMIT_IF_SUCCEEDED,
        )

    async def remember_delivery(
        self, *, provider: str, delivery_id: str, job_id: int, now: float
    ) -> bool:
        """Record a callback delivery id; False if it was seen before (a replay or retry)."""
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO webhook_deliveries (delivery_id, provider, job_id, received_at) "
            "VALUES (?, ?, ?, ?)",
            (delivery_id, provider, job_id, now),
        )
        inserted = cursor.rowcount == 1
        await cursor.close()
        return inserted

    async def _transition(
        self,
        job_id: int,
        expected: Collection[JobState],
        new_state: JobState,
        now: float,
        **columns: Any,
    ) -> bool:
        assignments = ["state = ?", "updated_at = ?"]
        values: list[Any] = [new_state.value, now]
        for column, value in columns.items():
            if isinstance(value, Expression):
                assignments.append(f"{column} = {value}")
            else:
                assignments.append(f"{column} = ?")
                values.append(value)
        placeholders = ",".join("?" * len(expected))
        cursor = await self._db.execute(
            f"UPDATE jobs SET {', '.join(assignments)} "  # noqa: S608 - column names are ours
            f"WHERE id = ? AND state IN ({placeholders})",
            (*values, job_id, *(state.value for state in expected)),
        )
        moved = cursor.rowcount == 1
        await cursor.close()
        return moved

    async def _select(self, sql: str, parameters: tuple[Any, ...]) -> list[Job]:
        async with self._db.execute(sql, parameters) as cursor:
            rows = await cursor.fetchall()
        return [_row_to_job(row) for row in rows]
