"""The prompt library's rows (issue 12): entries, their tags, likes, reports and browses.

Every change that must stay consistent with another row is one transaction: a like and the
entry's count, an entry and the bar on its author, a member forgotten and the counts of the
entries they liked. Search is SQLite's FTS5 (``library_search``, kept in step by triggers),
ranked by bm25 with the title weighted above the tags and the tags above the prompt.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import aiosqlite

from bot.core.domain import AspectRatio, Option, OutputFormat, SafetyLevel, Tier
from bot.core.storage.database import read_together, transaction
from bot.core.storage.library_protocol import (
    Browse,
    EntryFilter,
    ForgottenMember,
    LibraryEntry,
    LibrarySettings,
    Like,
    NewEntry,
    Recipe,
    ReportedEntry,
    Sort,
)
from bot.core.storage.protocols import AuditFields
from bot.core.storage.quotas import audit_row
from bot.core.storage.sqlite_dialect import RETURNING_ROW

# bm25's weights for title, tags and prompt, in the index's column order: a word in the title
# says most about what an entry is, a tag (chosen by its author) next, the prompt least (it
# is long, and names every detail of the picture).
SEARCH_WEIGHTS = (10.0, 5.0, 1.0)
_RANK = f"bm25(library_search, {', '.join(str(weight) for weight in SEARCH_WEIGHTS)})"
_ORDERS = {
    Sort.NEWEST: "e.id DESC",
    Sort.MOST_LIKED: "e.likes DESC, e.id DESC",
    Sort.MOST_USED: "e.uses DESC, e.id DESC",
}


def _entry(row: sqlite3.Row) -> LibraryEntry:
    return LibraryEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        job_id=row["job_id"],
        title=row["title"],
        tags=tuple(row["tags"].split()),
        recipe=Recipe(
            prompt=row["prompt"],
            negative_prompt=row["negative_prompt"],
            tier=Tier(row["tier"]),
            aspect_ratio=AspectRatio(row["aspect_ratio"]),
            safety=SafetyLevel(row["safety"]),
            output_format=OutputFormat(row["output_format"]),
            seed=row["seed"],
            chosen=frozenset(Option(value) for value in json.loads(row["chosen_options"])),
        ),
        image_name=row["image_name"],
        thumbnail_name=row["thumbnail_name"],
        width=row["width"],
        height=row["height"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        hidden=bool(row["hidden"]),
        likes=row["likes"],
        uses=row["uses"],
        gallery_channel_id=row["gallery_channel_id"],
        gallery_message_id=row["gallery_message_id"],
    )


def _matching(guild_id: int, where: EntryFilter) -> tuple[str, dict[str, object]]:
    """The FROM and WHERE of the visible entries ``where`` asks for (``e`` is the entry)."""
    source = "library_entries AS e"
    conditions = ["e.guild_id = :guild", "e.hidden = 0"]
    parameters: dict[str, object] = {"guild": guild_id}
    if where.query is not None:
        source = "library_search JOIN library_entries AS e ON e.id = library_search.rowid"
        conditions.append("library_search MATCH :query")
        parameters["query"] = where.query
    if where.tag is not None:
        conditions.append(
            "EXISTS (SELECT 1 FROM library_tags AS t WHERE t.entry_id = e.id AND t.tag = :tag)"
        )
        parameters["tag"] = where.tag
    if where.tier is not None:
        conditions.append("e.tier = :tier")
        parameters["tier"] = where.tier.value
    if where.author_id is not None:
        conditions.append("e.author_id = :author")
        parameters["author"] = where.author_id
    return f"FROM {source} WHERE {' AND '.join(conditions)}", parameters


def _order(where: EntryFilter, sort: Sort) -> str:
    return f"{_RANK}, e.id DESC" if where.query is not None else _ORDERS[sort]


class LibraryRepository:
    """The SQLite LibraryStore."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def add(self, entry: NewEntry) -> LibraryEntry | Literal["barred", "shared"]:
        recipe = entry.recipe

        def add(sqlite: sqlite3.Connection) -> LibraryEntry | Literal["barred", "shared"]:
            if sqlite.execute(
                "SELECT 1 FROM library_barred WHERE guild_id = ? AND user_id = ?",
                (entry.guild_id, entry.author_id),
            ).fetchall():
                return "barred"
            if sqlite.execute(
                "SELECT 1 FROM library_entries WHERE guild_id = ? AND job_id = ?",
                (entry.guild_id, entry.job_id),
            ).fetchall():
                return "shared"
            [row] = sqlite.execute(
                "INSERT INTO library_entries (guild_id, author_id, author_name, job_id, title, "  # noqa: S608
                "tags, prompt, negative_prompt, tier, aspect_ratio, safety, output_format, seed, "
                "chosen_options, image_name, thumbnail_name, width, height, created_at) "
                f"VALUES ({', '.join('?' * 19)}) {RETURNING_ROW}",
                (
                    entry.guild_id,
                    entry.author_id,
                    entry.author_name,
                    entry.job_id,
                    entry.title,
                    " ".join(entry.tags),
                    recipe.prompt,
                    recipe.negative_prompt,
                    recipe.tier.value,
                    recipe.aspect_ratio.value,
                    recipe.safety.value,
                    recipe.output_format.value,
                    recipe.seed,
                    json.dumps(sorted(option.value for option in recipe.chosen)),
                    entry.image_name,
                    entry.thumbnail_name,
                    entry.width,
                    entry.height,
                    entry.created_at,
                ),
            ).fetchall()
            sqlite.executemany(
                "INSERT INTO library_tags (entry_id, guild_id, tag) VALUES (?, ?, ?)",
                [(row["id"], entry.guild_id, tag) for tag in entry.tags],
            )
            return _entry(row)

        return await transaction(self._db, add)

    async def get(self, entry_id: int) -> LibraryEntry | None:
        if not 1 <= entry_id < 2**63:
            return None
        rows = await self._db.execute_fetchall(
            "SELECT * FROM library_entries WHERE id = ?", (entry_id,)
        )
        return next((_entry(row) for row in rows), None)

    async def entry_for_job(self, guild_id: int, job_id: int) -> LibraryEntry | None:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM library_entries WHERE guild_id = ? AND job_id = ?", (guild_id, job_id)
        )
        return next((_entry(row) for row in rows), None)

    async def matching_ids(
        self, guild_id: int, where: EntryFilter, sort: Sort, *, limit: int
    ) -> list[int]:
        source, parameters = _matching(guild_id, where)
        rows = await self._db.execute_fetchall(
            f"SELECT e.id {source} ORDER BY {_order(where, sort)} LIMIT :limit",
            {**parameters, "limit": limit},
        )
        return [row["id"] for row in rows]

    async def page(
        self, guild_id: int, where: EntryFilter, sort: Sort, *, offset: int, limit: int
    ) -> tuple[list[LibraryEntry], int]:
        source, parameters = _matching(guild_id, where)
        rows, [(total,)] = await read_together(
            self._db,
            [
                (
                    f"SELECT e.* {source} ORDER BY {_order(where, sort)} "
                    "LIMIT :limit OFFSET :offset",
                    {**parameters, "limit": limit, "offset": offset},
                ),
                (f"SELECT COUNT(*) {source}", parameters),
            ],
        )
        return [_entry(row) for row in rows], int(total)

    async def author_entries(self, guild_id: int, author_id: int) -> list[LibraryEntry]:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM library_entries WHERE guild_id = ? AND author_id = ? ORDER BY id DESC",
            (guild_id, author_id),
        )
        return [_entry(row) for row in rows]

    async def tags(self, guild_id: int, prefix: str, *, limit: int) -> list[str]:
        rows = await self._db.execute_fetchall(
            "SELECT t.tag FROM library_tags AS t JOIN library_entries AS e ON e.id = t.entry_id "
            "WHERE t.guild_id = :guild AND e.hidden = 0 "
            "AND substr(t.tag, 1, length(:prefix)) = :prefix "
            "GROUP BY t.tag ORDER BY COUNT(*) DESC, t.tag LIMIT :limit",
            {"guild": guild_id, "prefix": prefix, "limit": limit},
        )
        return [row["tag"] for row in rows]

    async def toggle_like(self, entry_id: int, user_id: int, *, now: float) -> Like | None:
        def toggle(sqlite: sqlite3.Connection) -> Like | None:
            taken_back = sqlite.execute(
                "DELETE FROM library_likes WHERE entry_id = ? AND user_id = ? RETURNING entry_id",
                (entry_id, user_id),
            ).fetchall()
            if not taken_back:
                exists = sqlite.execute(
                    "SELECT 1 FROM library_entries WHERE id = ?", (entry_id,)
                ).fetchall()
                if not exists:
                    return None
                sqlite.execute(
                    "INSERT INTO library_likes (entry_id, user_id, liked_at) VALUES (?, ?, ?)",
                    (entry_id, user_id, now),
                )
            change = -1 if taken_back else 1
            [(likes,)] = sqlite.execute(
                "UPDATE library_entries SET likes = likes + ? WHERE id = ? RETURNING likes",
                (change, entry_id),
            ).fetchall()
            return Like(liked=not taken_back, likes=int(likes))

        return await transaction(self._db, toggle)

    async def count_use(self, entry_id: int) -> None:
        await self._db.execute(
            "UPDATE library_entries SET uses = uses + 1 WHERE id = ?", (entry_id,)
        )

    async def report(self, entry_id: int, user_id: int, reason: str, *, now: float) -> bool:
        def report(sqlite: sqlite3.Connection) -> bool:
            updated = sqlite.execute(
                "UPDATE library_reports SET reason = ? WHERE entry_id = ? AND user_id = ?",
                (reason, entry_id, user_id),
            ).rowcount
            if updated:
                return False
            sqlite.execute(
                "INSERT INTO library_reports (entry_id, user_id, reason, reported_at) "
                "VALUES (?, ?, ?, ?)",
                (entry_id, user_id, reason, now),
            )
            return True

        return await transaction(self._db, report)

    async def reported(self, guild_id: int, *, limit: int) -> list[ReportedEntry]:
        rows = await self._db.execute_fetchall(
            "SELECT e.*, COUNT(*) AS reports, MAX(r.reported_at) AS last_reported_at, "
            "(SELECT reason FROM library_reports WHERE entry_id = e.id "
            " ORDER BY reported_at DESC LIMIT 1) AS last_reason "
            "FROM library_entries AS e JOIN library_reports AS r ON r.entry_id = e.id "
            "WHERE e.guild_id = ? GROUP BY e.id "
            "ORDER BY reports DESC, last_reported_at DESC LIMIT ?",
            (guild_id, limit),
        )
        return [
            ReportedEntry(
                entry=_entry(row),
                reports=row["reports"],
                last_reason=row["last_reason"],
                last_reported_at=datetime.fromtimestamp(row["last_reported_at"], UTC),
            )
            for row in rows
        ]

    async def set_hidden(
        self, guild_id: int, entry_id: int, hidden: bool, *, audit: AuditFields | None
    ) -> LibraryEntry | None:
        def change(sqlite: sqlite3.Connection) -> LibraryEntry | None:
            rows = sqlite.execute(
                "UPDATE library_entries SET hidden = ? WHERE guild_id = ? AND id = ? "  # noqa: S608
                f"{RETURNING_ROW}",
                (int(hidden), guild_id, entry_id),
            ).fetchall()
            if not rows:
                return None
            if audit is not None:
                sqlite.execute(*audit_row(guild_id, audit))
            return _entry(rows[0])

        return await transaction(self._db, change)

    async def delete(
        self, guild_id: int, entry_id: int, *, audit: AuditFields | None
    ) -> LibraryEntry | None:
        """The entry's likes, tags and reports go with it (ON DELETE CASCADE), and its words
        leave the search index (trigger)."""

        def delete(sqlite: sqlite3.Connection) -> LibraryEntry | None:
            rows = sqlite.execute(
                f"DELETE FROM library_entries WHERE guild_id = ? AND id = ? {RETURNING_ROW}",  # noqa: S608
                (guild_id, entry_id),
            ).fetchall()
            if not rows:
                return None
            if audit is not None:
                sqlite.execute(*audit_row(guild_id, audit))
            return _entry(rows[0])

        return await transaction(self._db, delete)

    async def forget_member(
        self, guild_id: int, user_id: int, *, audit: AuditFields | None
    ) -> ForgottenMember:
        """Their entries, their likes of others' entries (each count taken down with it), the
        reports they made and their browses; a bar on them stays (it is the admins')."""
        who = {"guild": guild_id, "user": user_id}

        def forget(sqlite: sqlite3.Connection) -> ForgottenMember:
            entries = sqlite.execute(
                "DELETE FROM library_entries WHERE guild_id = :guild "  # noqa: S608
                f"AND author_id = :user {RETURNING_ROW}",
                who,
            ).fetchall()
            sqlite.execute(
                "UPDATE library_entries SET likes = likes - 1 WHERE guild_id = :guild AND id IN "
                "(SELECT entry_id FROM library_likes WHERE user_id = :user)",
                who,
            )
            likes = sqlite.execute(
                "DELETE FROM library_likes WHERE user_id = :user AND entry_id IN "
                "(SELECT id FROM library_entries WHERE guild_id = :guild)",
                who,
            ).rowcount
            sqlite.execute(
                "DELETE FROM library_reports WHERE user_id = :user AND entry_id IN "
                "(SELECT id FROM library_entries WHERE guild_id = :guild)",
                who,
            )
            sqlite.execute(
                "DELETE FROM library_browses WHERE guild_id = :guild AND user_id = :user", who
            )
            if audit is not None:
                sqlite.execute(*audit_row(guild_id, audit))
            return ForgottenMember(
                entries=tuple(sorted((_entry(row) for row in entries), key=lambda e: e.id)),
                likes=likes,
            )

        return await transaction(self._db, forget)

    async def set_barred(
        self, guild_id: int, user_id: int, barred: bool, *, audit: AuditFields
    ) -> bool:
        def change(sqlite: sqlite3.Connection) -> bool:
            if barred:
                changed = sqlite.execute(
                    "INSERT INTO library_barred (guild_id, user_id, barred_by, barred_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (guild_id, user_id, audit.actor_id, audit.now),
                ).rowcount
            else:
                changed = sqlite.execute(
                    "DELETE FROM library_barred WHERE guild_id = ? AND user_id = ?",
                    (guild_id, user_id),
                ).rowcount
            if changed:
                sqlite.execute(*audit_row(guild_id, audit))
            return bool(changed)

        return await transaction(self._db, change)

    async def is_barred(self, guild_id: int, user_id: int) -> bool:
        rows = await self._db.execute_fetchall(
            "SELECT 1 FROM library_barred WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return bool(rows)

    async def set_gallery_post(self, entry_id: int, channel_id: int, message_id: int) -> None:
        await self._db.execute(
            "UPDATE library_entries SET gallery_channel_id = ?, gallery_message_id = ? "
            "WHERE id = ?",
            (channel_id, message_id, entry_id),
        )

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
        def start(sqlite: sqlite3.Connection) -> Browse:
            sqlite.execute("DELETE FROM library_browses WHERE created_at < ?", (forget_before,))
            [row] = sqlite.execute(
                "INSERT INTO library_browses (guild_id, user_id, entry_ids, heading, created_at) "  # noqa: S608
                f"VALUES (?, ?, ?, ?, ?) {RETURNING_ROW}",
                (guild_id, user_id, json.dumps(list(entry_ids)), heading, now),
            ).fetchall()
            return _browse(row)

        return await transaction(self._db, start)

    async def browse(self, browse_id: int) -> Browse | None:
        if not 1 <= browse_id < 2**63:
            return None
        rows = await self._db.execute_fetchall(
            "SELECT * FROM library_browses WHERE id = ?", (browse_id,)
        )
        return next((_browse(row) for row in rows), None)

    async def settings(self, guild_id: int) -> LibrarySettings:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM library_settings WHERE guild_id = ?", (guild_id,)
        )
        row = next(iter(rows), None)
        if row is None:
            return LibrarySettings()
        return LibrarySettings(
            gallery_channel_id=row["gallery_channel_id"],
            web_gallery=bool(row["web_gallery"]),
            guild_name=row["guild_name"],
        )

    async def set_gallery_channel(
        self, guild_id: int, channel_id: int | None, *, audit: AuditFields
    ) -> None:
        await self._upsert_settings(guild_id, {"gallery_channel_id": channel_id}, audit)

    async def set_web_gallery(
        self, guild_id: int, enabled: bool, *, guild_name: str, audit: AuditFields
    ) -> None:
        await self._upsert_settings(
            guild_id, {"web_gallery": int(enabled), "guild_name": guild_name}, audit
        )

    async def _upsert_settings(
        self, guild_id: int, values: dict[str, object], audit: AuditFields
    ) -> None:
        columns = ", ".join(values)
        marks = ", ".join(f":{name}" for name in values)
        updates = ", ".join(f"{name} = excluded.{name}" for name in values)

        def upsert(sqlite: sqlite3.Connection) -> None:
            sqlite.execute(
                f"INSERT INTO library_settings (guild_id, {columns}) "  # noqa: S608
                f"VALUES (:guild, {marks}) ON CONFLICT (guild_id) DO UPDATE SET {updates}",
                {"guild": guild_id, **values},
            )
            sqlite.execute(*audit_row(guild_id, audit))

        await transaction(self._db, upsert)


def _browse(row: sqlite3.Row) -> Browse:
    return Browse(
        id=row["id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        entry_ids=tuple(json.loads(row["entry_ids"])),
        heading=row["heading"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
    )
