"""Job rows: every state change is one conditional UPDATE, so no transition happens twice."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.core.domain import (
    MAX_JOB_ID,
    AspectRatio,
    Charge,
    DiscordTarget,
    GenerationRequest,
    Job,
    JobState,
    Option,
    OutputFormat,
    Reservation,
    SafetyLevel,
    SharedOrigin,
    Tier,
)
from bot.core.storage.batching import WriteBatcher
from bot.core.storage.sqlite_dialect import BATCH_ROWS, RETURNING_ROW, greatest, least


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
            negative_prompt=row["negative_prompt"],
            seed=row["seed"],
            image_count=row["image_count"],
            chosen=_options(row["chosen_options"]),
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
        batch_index=row["batch_index"],
        batch_size=row["batch_size"],
        effective_prompt=row["effective_prompt"],
        not_applied=_options(row["not_applied"]),
        maybe_created_at=tuple(json.loads(row["maybe_created_at"])),
        private_delivery_at=_to_datetime(row["private_delivery_at"]),
        remix_of=row["remix_of"],
        result_message_id=row["result_message_id"],
        undelivered_told_at=_to_datetime(row["undelivered_told_at"]),
        create_sent_at=_to_datetime(row["create_sent_at"]),
        shared_from=_shared_from(row),
    )


def _shared_from(row: sqlite3.Row) -> SharedOrigin | None:
    if row["shared_entry_id"] is None:
        return None
    return SharedOrigin(row["shared_entry_id"], row["shared_title"], row["shared_author_id"])


def _as_inserted(
    row: sqlite3.Row,
    request: GenerationRequest,
    target: DiscordTarget,
    callback_token: str,
    now: float,
    reservation: Reservation,
    remix_of: int | None,
    shared_from: SharedOrigin | None,
) -> Job:
    """The job a reservation's INSERT wrote, from the values it was given: every column it
    does not set starts at its schema default, which is ``Job``'s default too. Spares reading
    back and parsing 36 columns per job, a third of a reservation's cost under a burst;
    ``test_a_reserved_job_is_returned_as_a_read_of_its_row_shows_it`` holds the two equal.
    """
    created = datetime.fromtimestamp(now, UTC)
    stored_expiry = datetime.fromtimestamp(target.interaction_expires_at.timestamp(), UTC)
    # The column keeps a float of seconds; a thread's parent is not stored (only the
    # request's channel check reads it), so a read of the row has neither.
    if stored_expiry != target.interaction_expires_at or target.parent_channel_id is not None:
        target = dataclasses.replace(
            target, interaction_expires_at=stored_expiry, parent_channel_id=None
        )
    return Job(
        id=row["id"],
        state=JobState.QUEUED,
        request=request,
        target=target,
        provider=None,
        provider_job_id=None,
        callback_token=f"{callback_token}.{row['batch_index']}",
        attempts=0,
        error=None,
        delivery_error=None,
        image_paths=(),
        created_at=created,
        updated_at=created,
        credits=reservation.credits,
        charge=Charge.RESERVED,
        batch_index=row["batch_index"],
        batch_size=reservation.jobs,
        remix_of=remix_of,
        shared_from=shared_from,
    )


def _options(column: str) -> frozenset[Option]:
    return frozenset(Option(value) for value in json.loads(column))


def _options_column(options: Collection[Option]) -> str:
    if not options:
        return "[]"  # most requests choose nothing, and json.dumps is a measurable cost per job
    return json.dumps(sorted(option.value for option in options))


# Whose jobs a count covers: one member's, or a whole guild's. Two fragments rather than one
# "(:user IS NULL OR user_id = :user)": SQLite plans a statement before it sees the
# parameters, and that OR keeps it from using user_id in an index.
_MEMBER = "guild_id = :guild AND user_id = :user"
_GUILD = "guild_id = :guild"


def _used(who: str, since: str) -> str:
    """Credits reserved or committed by ``who`` since ``since``."""
    return f"""
        (SELECT COALESCE(SUM(credits), 0) FROM jobs
         WHERE {who} AND created_at >= {since} AND charge != :released)
    """  # noqa: S608 - only this module's own fragments are interpolated


def _queued(who: str) -> str:
    """Jobs of ``who`` waiting in the queue. The state is written out, not a parameter, so
    SQLite can use the partial index of queued jobs."""
    return f"(SELECT COUNT(*) FROM jobs WHERE {who} AND state = '{JobState.QUEUED.value}')"  # noqa: S608


def _granted(since: str) -> str:
    """One-off credits the member was granted since ``since``."""
    return f"""
        (SELECT COALESCE(SUM(credits), 0) FROM credit_grants
         WHERE {_MEMBER} AND granted_at >= {since})
    """  # noqa: S608 - only this module's own fragments are interpolated


def _member_used(floor: str) -> str:
    """What the member used since ``floor`` or their last reset, whichever is later: the
    reset is read in the reservation's own statement, so it costs no round trip of its own."""
    reset = "(SELECT reset_at FROM member_resets WHERE guild_id = :guild AND user_id = :user)"
    return _used(_MEMBER, greatest(floor, f"COALESCE({reset}, 0)"))


# The reservation's conditions for :jobs new jobs of :credits each; NULL limits are
# unlimited. Parameters are Reservation's fields. Every subquery here is uncorrelated, so
# SQLite evaluates each once per statement: every row of a batch sees the same answer, and a
# request gets all of its jobs or none.
_WITHIN_LIMITS = f"""
    (:max_queued_per_member IS NULL
        OR {_queued(_MEMBER)} + :jobs <= :max_queued_per_member)
    AND (:max_queued_per_guild IS NULL
        OR {_queued(_GUILD)} + :jobs <= :max_queued_per_guild)
    AND (:member_daily IS NULL
        OR {_member_used(":member_counted_since_day")} + :credits * :jobs
           <= :member_daily + {_granted(":day_start")})
    AND (:member_monthly IS NULL
        OR {_member_used(":member_counted_since_month")} + :credits * :jobs
           <= :member_monthly + {_granted(":month_start")})
    AND (:guild_monthly IS NULL
        OR {_used(_GUILD, ":month_start")} + :credits * :jobs <= :guild_monthly)
"""


# The reservation: built once, not per call (a 3 kB string formatted per job is measurable).
_RESERVE = f"""
    INSERT INTO jobs (state, prompt, tier, aspect_ratio, safety, output_format,
                      negative_prompt, seed, image_count, chosen_options,
                      batch_index, batch_size,
                      guild_id, channel_id, user_id, application_id, interaction_token,
                      interaction_expires_at, attachment_size_limit, callback_token,
                      created_at, updated_at, credits, charge, remix_of,
                      shared_entry_id, shared_title, shared_author_id)
    SELECT :queued, :prompt, :tier, :aspect_ratio, :safety, :output_format,
           :negative_prompt, :seed, :image_count, :chosen_options,
           batch.n, :jobs,
           :guild, :channel, :user, :application, :interaction_token,
           :interaction_expires_at, :attachment_size_limit,
           :callback_token || '.' || batch.n,
           :now, :now, :credits, :reserved, :remix_of,
           :shared_entry_id, :shared_title, :shared_author_id
    FROM {BATCH_ROWS}
    WHERE {_WITHIN_LIMITS}
    RETURNING id, batch_index
"""  # noqa: S608 - only this package's own constants are interpolated


_RESERVATION_FIELDS = tuple(field.name for field in dataclasses.fields(Reservation))


def _limits(reservation: Reservation) -> dict[str, Any]:
    """Reservation's fields as parameters; not dataclasses.asdict, whose deep copy is a
    measurable part of a reservation's cost."""
    return {name: getattr(reservation, name) for name in _RESERVATION_FIELDS}


class Expression(str):
    """A column value computed by SQLite from the row, in the same UPDATE."""


_INCREMENT = Expression("attempts + 1")
_COMMIT_IF_SUCCEEDED = Expression(
    f"CASE state WHEN '{JobState.SUCCEEDED.value}' THEN '{Charge.COMMITTED.value}' ELSE charge END"
)
_IN_PROGRESS = (JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED)


class JobRepository:
    """The SQLite JobStore: all SQL about jobs. Methods that change state return the job as
    that change left it, or None when the row did not move, so a caller needs no second read."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._reservations = WriteBatcher(connection)

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
        """Store ``reservation.jobs`` queued jobs holding their credits, or none if a limit
        says no; ``remix_of`` names the job whose result the request was started from, and
        ``shared_from`` the library entry.

        One INSERT … SELECT … WHERE … RETURNING: SQLite runs each statement atomically, so
        checking the limits and taking the credits cannot be split by a concurrent request
        (issue 3: 100 simultaneous requests with 5 credits left yield exactly 5 jobs), and the
        limits are the same for every row of the batch, so a request for several images gets
        all of its jobs or none. The member's reset and grants are read inside the statement
        too. Reservations made together share a transaction and a round trip
        (``WriteBatcher``), each still checked after the one before it.
        """
        rows = await self._reservations.execute(
            _RESERVE,
            {
                "queued": JobState.QUEUED.value,
                "prompt": request.prompt,
                "tier": request.tier.value,
                "aspect_ratio": request.aspect_ratio.value,
                "safety": request.safety.value,
                "output_format": request.output_format.value,
                "negative_prompt": request.negative_prompt,
                "seed": request.seed,
                "image_count": request.image_count,
                "chosen_options": _options_column(request.chosen),
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
                "remix_of": remix_of,
                "shared_entry_id": None if shared_from is None else shared_from.entry_id,
                "shared_title": None if shared_from is None else shared_from.title,
                "shared_author_id": None if shared_from is None else shared_from.author_id,
                **_limits(reservation),
            },
        )
        return sorted(
            (
                _as_inserted(
                    row, request, target, callback_token, now, reservation, remix_of, shared_from
                )
                for row in rows
            ),
            key=lambda job: job.id,
        )

    async def usage(self, *, guild_id: int, user_id: int | None, since: float) -> int:
        """Credits reserved or committed since ``since`` by a member (or a whole guild)."""
        who = _GUILD if user_id is None else _MEMBER
        [row] = await self._db.execute_fetchall(
            f"SELECT {_used(who, ':since')} AS used",
            {"guild": guild_id, "user": user_id, "since": since, "released": Charge.RELEASED.value},
        )
        return int(row["used"])

    async def queued_count(self, *, guild_id: int, user_id: int | None) -> int:
        who = _GUILD if user_id is None else _MEMBER
        [row] = await self._db.execute_fetchall(
            f"SELECT {_queued(who)} AS queued", {"guild": guild_id, "user": user_id}
        )
        return int(row["queued"])

    async def get(self, job_id: int) -> Job | None:
        """None for an id no job can have, too: a number past SQLite's range would not bind."""
        if not 1 <= job_id <= MAX_JOB_ID:
            return None
        return _first(await self._db.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,)))

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

    async def recent_jobs(self, *, guild_id: int, user_id: int, limit: int) -> list[Job]:
        """A member's latest jobs in a guild, those that never reached them first."""
        return await self._select(
            "SELECT * FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608 - our own enum
            f"ORDER BY state = '{JobState.UNDELIVERABLE.value}' DESC, id DESC LIMIT ?",
            (guild_id, user_id, limit),
        )

    async def take_undelivered(self, *, guild_id: int, user_id: int, now: float) -> list[Job]:
        """The member's undeliverable jobs they have not been told of, marked told in the same
        statement: two commands at once tell them once. Read first, so the common answer
        (nothing) costs no write after every command."""
        untold = await self._db.execute_fetchall(
            "SELECT 1 FROM jobs WHERE guild_id = ? AND user_id = ? "  # noqa: S608 - our own enum
            f"AND state = '{JobState.UNDELIVERABLE.value}' AND undelivered_told_at IS NULL "
            "LIMIT 1",
            (guild_id, user_id),
        )
        if not untold:
            return []
        return sorted(
            await self._select(
                "UPDATE jobs SET undelivered_told_at = ? WHERE guild_id = ? AND user_id = ? "  # noqa: S608 - our own enum
                f"AND state = '{JobState.UNDELIVERABLE.value}' AND undelivered_told_at IS NULL "
                f"{RETURNING_ROW}",
                (now, guild_id, user_id),
            ),
            key=lambda job: job.id,
        )

    async def request_jobs(self, interaction_token: str) -> list[Job]:
        """Every job of one /imagine (they share its interaction token), in id order."""
        return await self._select(
            "SELECT * FROM jobs WHERE interaction_token = ? ORDER BY id", (interaction_token,)
        )

    async def mark_private_delivery(self, job_id: int, *, now: float) -> None:
        """Note, once, that the result goes to the member's private response (not a state
        change: the job is delivered only once that response shows it)."""
        async with self._db.execute(
            "UPDATE jobs SET private_delivery_at = ? WHERE id = ? AND private_delivery_at IS NULL",
            (now, job_id),
        ):
            pass

    async def mark_submitting(
        self,
        job_id: int,
        *,
        provider: str,
        not_applied: Collection[Option] = (),
        now: float,
    ) -> Job | None:
        """Record where a create is about to be sent, and what it will not apply, before it
        is; None if the job is no longer queued (canceled meanwhile)."""
        return await self._transition(
            job_id,
            (JobState.QUEUED,),
            JobState.SUBMITTING,
            now,
            provider=provider,
            not_applied=_options_column(not_applied),
            attempts=_INCREMENT,
            create_sent_at=now,
        )

    async def mark_not_submitted(
        self, job_id: int, *, maybe_created_at: Collection[str] = (), now: float
    ) -> Job | None:
        """Queued again: the provider created nothing (429, refused connection), or may have
        (a timeout) and is now listed in ``maybe_created_at`` so it is never asked again."""
        return await self._transition(
            job_id,
            (JobState.SUBMITTING,),
            JobState.QUEUED,
            now,
            provider=None,
            maybe_created_at=json.dumps(sorted(maybe_created_at)),
        )

    async def mark_submitted(
        self, job_id: int, *, provider: str, provider_job_id: str, now: float
    ) -> Job | None:
        """None also when another job already holds that provider job (a restart looking
        for its lost create found a sibling's): jobs_by_provider_job is unique."""
        try:
            return await self._transition(
                job_id,
                (JobState.SUBMITTING,),
                JobState.SUBMITTED,
                now,
                provider=provider,
                provider_job_id=provider_job_id,
                submitted_at=now,
            )
        except sqlite3.IntegrityError:
            return None

    async def mark_succeeded(
        self,
        job_id: int,
        *,
        image_paths: list[Path],
        effective_prompt: str | None = None,
        output_format: OutputFormat | None = None,
        credits: int | None = None,
        now: float,
    ) -> Job | None:
        """The images exist. ``output_format`` is what the provider made, ``credits`` what
        the images that came back cost (less than reserved when some were filtered out)."""
        changes: dict[str, Any] = {}
        if output_format is not None:
            changes["output_format"] = output_format.value
        if credits is not None:
            changes["credits"] = Expression(least("credits", str(int(credits))))
        return await self._transition(
            job_id,
            (JobState.SUBMITTED,),
            JobState.SUCCEEDED,
            now,
            image_paths=json.dumps([str(p) for p in image_paths]),
            effective_prompt=effective_prompt,
            finished_at=now,
            **changes,
        )

    async def mark_failed(
        self, job_id: int, *, error: str, now: float, outcome: str | None = None
    ) -> Job | None:
        """Failed, timed out or blocked: the member gets the credits back. ``outcome``
        records a safety block, which admins count per member."""
        return await self._transition(
            job_id,
            _IN_PROGRESS,
            JobState.FAILED,
            now,
            error=error,
            finished_at=now,
            charge=Charge.RELEASED.value,
            outcome=outcome,
        )

    async def mark_canceled(self, job_id: int, *, now: float) -> Job | None:
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

    async def mark_delivered(
        self, job_id: int, *, now: float, message_id: int | None = None
    ) -> Job | None:
        """Posted (in ``message_id`` when it went to the channel): a succeeded job's credits
        are now spent for good."""
        return await self._transition(
            job_id,
            (JobState.SUCCEEDED, JobState.FAILED),
            JobState.DELIVERED,
            now,
            delivered_at=now,
            charge=_COMMIT_IF_SUCCEEDED,
            result_message_id=message_id,
        )

    async def mark_undeliverable(self, job_id: int, *, reason: str, now: float) -> Job | None:
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
        inserted = await self._db.execute_fetchall(
            "INSERT INTO webhook_deliveries (delivery_id, provider, job_id, received_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING delivery_id",
            (delivery_id, provider, job_id, now),
        )
        return bool(list(inserted))

    async def _transition(
        self,
        job_id: int,
        expected: Collection[JobState],
        new_state: JobState,
        now: float,
        **columns: Any,
    ) -> Job | None:
        """One UPDATE that applies only from an ``expected`` state and hands back the row."""
        assignments = ["state = ?", "updated_at = ?"]
        values: list[Any] = [new_state.value, now]
        for column, value in columns.items():
            if isinstance(value, Expression):
                assignments.append(f"{column} = {value}")
            else:
                assignments.append(f"{column} = ?")
                values.append(value)
        placeholders = ",".join("?" * len(expected))
        rows = await self._db.execute_fetchall(
            f"UPDATE jobs SET {', '.join(assignments)} "  # noqa: S608 - column names are ours
            f"WHERE id = ? AND state IN ({placeholders}) {RETURNING_ROW}",
            (*values, job_id, *(state.value for state in expected)),
        )
        return _first(rows)

    async def _select(self, sql: str, parameters: tuple[Any, ...]) -> list[Job]:
        return _jobs(await self._db.execute_fetchall(sql, parameters))


def _jobs(rows: Iterable[aiosqlite.Row]) -> list[Job]:
    return [_row_to_job(row) for row in rows]


def _first(rows: Iterable[aiosqlite.Row]) -> Job | None:
    """The job of a statement that matches one row at most (by id), or None."""
    return next(iter(_jobs(rows)), None)
