"""Job rows: every state change is one conditional UPDATE, so no transition happens twice."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.domain import (
    AspectRatio,
    DiscordTarget,
    GenerationRequest,
    Job,
    JobState,
    OutputFormat,
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
        submitted_at=_to_datetime(row["submitted_at"]),
        finished_at=_to_datetime(row["finished_at"]),
        delivered_at=_to_datetime(row["delivered_at"]),
    )


class Increment:
    """Column value meaning "one more than now", computed by SQLite in the same UPDATE."""


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
    ) -> Job:
        cursor = await self._db.execute(
            """
            INSERT INTO jobs (state, prompt, tier, aspect_ratio, safety, output_format,
                              guild_id, channel_id, user_id, application_id, interaction_token,
                              interaction_expires_at, attachment_size_limit, callback_token,
                              created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                JobState.QUEUED.value,
                request.prompt,
                request.tier.value,
                request.aspect_ratio.value,
                request.safety.value,
                request.output_format.value,
                target.guild_id,
                target.channel_id,
                target.user_id,
                target.application_id,
                target.interaction_token,
                target.interaction_expires_at.timestamp(),
                target.attachment_size_limit,
                callback_token,
                now,
                now,
            ),
        )
        job_id = cursor.lastrowid
        await cursor.close()
        assert job_id is not None
        job = await self.get(job_id)
        assert job is not None
        return job

    async def get(self, job_id: int) -> Job | None:
        async with self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else _row_to_job(row)

    async def unfinished(self) -> list[Job]:
        """Every job not yet delivered or given up on, oldest first: what a restart resumes."""
        return await self._select(
            "SELECT * FROM jobs WHERE state NOT IN (?, ?) ORDER BY id",
            (JobState.DELIVERED.value, JobState.UNDELIVERABLE.value),
        )

    async def queued(self, *, limit: int, excluding: Collection[int] = ()) -> list[Job]:
        """The oldest queued jobs that no worker holds yet."""
        placeholders = ",".join("?" * len(excluding))
        exclusion = f"AND id NOT IN ({placeholders})" if excluding else ""
        return await self._select(
            f"SELECT * FROM jobs WHERE state = ? {exclusion} ORDER BY id LIMIT ?",  # noqa: S608
            (JobState.QUEUED.value, *excluding, limit),
        )

    async def queue_position(self, job_id: int) -> int:
        """1 for the next job to start; counts queued jobs up to and including this one."""
        async with self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = ? AND id <= ?",
            (JobState.QUEUED.value, job_id),
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def mark_submitting(self, job_id: int, *, provider: str, now: float) -> bool:
        """Record that a create is about to be sent, before it is sent."""
        return await self._transition(
            job_id,
            (JobState.QUEUED,),
            JobState.SUBMITTING,
            now,
            provider=provider,
            attempts=Increment(),
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
        return await self._transition(
            job_id,
            (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED),
            JobState.FAILED,
            now,
            error=error,
            finished_at=now,
        )

    async def mark_delivered(self, job_id: int, *, now: float) -> bool:
        return await self._transition(
            job_id,
            (JobState.SUCCEEDED, JobState.FAILED),
            JobState.DELIVERED,
            now,
            delivered_at=now,
        )

    async def mark_undeliverable(self, job_id: int, *, reason: str, now: float) -> bool:
        """Give up posting; the images stay on disk and the reason is kept beside any error."""
        return await self._transition(
            job_id,
            (JobState.SUCCEEDED, JobState.FAILED),
            JobState.UNDELIVERABLE,
            now,
            delivery_error=reason,
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
            if isinstance(value, Increment):
                assignments.append(f"{column} = {column} + 1")
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
