"""Each guild's blocklist: terms and regular expressions refused in prompts (issue 11).

Adding checks the guild's count against the cap and the entry against the list in the same
transaction as the insert and its audit row, so two admins adding at once cannot pass the cap
together, and the trail names every entry that was ever on the list.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime
from typing import Literal, cast

import aiosqlite

from bot.core.storage.database import transaction
from bot.core.storage.protocols import AuditFields, BlocklistEntry, BlocklistKind
from bot.core.storage.quotas import audit_row
from bot.core.storage.sqlite_dialect import RETURNING_ROW


def _entry(row: sqlite3.Row) -> BlocklistEntry:
    return BlocklistEntry(
        id=row["id"],
        kind=cast(BlocklistKind, row["kind"]),
        text=row["entry"],
        added_by=row["added_by"],
        added_at=datetime.fromtimestamp(row["added_at"], UTC),
    )


def _audited(entry: BlocklistEntry, audit: AuditFields) -> AuditFields:
    details = {**audit.details, "id": entry.id, "kind": entry.kind, "entry": entry.text}
    return dataclasses.replace(audit, details=details)


class BlocklistRepository:
    """The SQLite BlocklistStore."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection

    async def entries(self, guild_id: int) -> list[BlocklistEntry]:
        rows = await self._db.execute_fetchall(
            "SELECT * FROM blocklist WHERE guild_id = ? ORDER BY id", (guild_id,)
        )
        return [_entry(row) for row in rows]

    async def add(
        self,
        guild_id: int,
        kind: BlocklistKind,
        text: str,
        *,
        max_entries: int,
        audit: AuditFields,
    ) -> BlocklistEntry | Literal["full", "duplicate"]:
        def add(sqlite: sqlite3.Connection) -> BlocklistEntry | Literal["full", "duplicate"]:
            [(count,)] = sqlite.execute(
                "SELECT COUNT(*) FROM blocklist WHERE guild_id = ?", (guild_id,)
            ).fetchall()
            if sqlite.execute(
                "SELECT 1 FROM blocklist WHERE guild_id = ? AND kind = ? AND entry = ?",
                (guild_id, kind, text),
            ).fetchall():
                return "duplicate"
            if count >= max_entries:
                return "full"
            [row] = sqlite.execute(
                "INSERT INTO blocklist (guild_id, kind, entry, added_by, added_at) "  # noqa: S608
                f"VALUES (?, ?, ?, ?, ?) {RETURNING_ROW}",
                (guild_id, kind, text, audit.actor_id, audit.now),
            ).fetchall()
            entry = _entry(row)
            sqlite.execute(*audit_row(guild_id, _audited(entry, audit)))
            return entry

        return await transaction(self._db, add)

    async def remove(
        self, guild_id: int, entry_id: int, *, audit: AuditFields
    ) -> BlocklistEntry | None:
        def remove(sqlite: sqlite3.Connection) -> BlocklistEntry | None:
            rows = sqlite.execute(
                f"DELETE FROM blocklist WHERE guild_id = ? AND id = ? {RETURNING_ROW}",  # noqa: S608
                (guild_id, entry_id),
            ).fetchall()
            if not rows:
                return None
            entry = _entry(rows[0])
            sqlite.execute(*audit_row(guild_id, _audited(entry, audit)))
            return entry

        return await transaction(self._db, remove)
