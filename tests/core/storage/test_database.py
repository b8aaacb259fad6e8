from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.core.storage.database import (
    Statement,
    migrations,
    open_database,
    read_together,
    write_atomically,
)


async def test_new_database_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    connection = await open_database(tmp_path / "nested" / "bot.sqlite3")
    try:
        async with connection.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        assert row[0] == len(migrations())
    finally:
        await connection.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    await (await open_database(path)).close()
    # A second run of migration 1 would fail on CREATE TABLE jobs.
    connection = await open_database(path)
    await connection.close()


async def test_database_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    connection = await open_database(tmp_path / "bot.sqlite3")
    try:
        async with connection.execute("PRAGMA journal_mode") as cursor:
            journal = await cursor.fetchone()
        async with connection.execute("PRAGMA foreign_keys") as cursor:
            foreign_keys = await cursor.fetchone()
        assert journal is not None
        assert foreign_keys is not None
        assert journal[0] == "wal"
        assert foreign_keys[0] == 1
    finally:
        await connection.close()


def test_migrations_are_numbered_without_gaps() -> None:
    assert [number for number, _ in migrations()] == list(range(1, len(migrations()) + 1))


async def test_commits_are_synced_at_checkpoints_not_at_every_commit(tmp_path: Path) -> None:
    """synchronous = NORMAL: under WAL still safe from a killed process."""
    connection = await open_database(tmp_path / "bot.sqlite3")
    try:
        [row] = await connection.execute_fetchall("PRAGMA synchronous")
        assert row[0] == 1  # NORMAL
    finally:
        await connection.close()


async def audit_rows(connection: aiosqlite.Connection) -> list[str]:
    rows = await connection.execute_fetchall("SELECT action FROM admin_audit ORDER BY id")
    return [row[0] for row in rows]


def an_audit_row(action: str) -> Statement:
    return (
        "INSERT INTO admin_audit (guild_id, actor_id, action, details, created_at) "
        "VALUES (1, 2, ?, '{}', 0)",
        (action,),
    )


async def test_an_atomic_write_that_fails_part_way_leaves_nothing(
    connection: aiosqlite.Connection,
) -> None:
    breaks_a_constraint = ("INSERT INTO admin_audit (guild_id) VALUES (NULL)", ())

    with pytest.raises(sqlite3.IntegrityError):
        await write_atomically(connection, [an_audit_row("first"), breaks_a_constraint])

    assert await audit_rows(connection) == []
    assert not connection.in_transaction


async def test_a_failed_atomic_write_never_takes_a_concurrent_write_with_it(
    connection: aiosqlite.Connection,
) -> None:
    breaks_a_constraint = ("INSERT INTO admin_audit (guild_id) VALUES (NULL)", ())
    failing = write_atomically(
        connection, [an_audit_row("change"), an_audit_row("its audit"), breaks_a_constraint]
    )

    outcomes = await asyncio.gather(
        failing, connection.execute_insert(*an_audit_row("meanwhile")), return_exceptions=True
    )

    assert isinstance(outcomes[0], sqlite3.IntegrityError)
    assert await audit_rows(connection) == ["meanwhile"]


async def test_reads_together_return_each_statements_rows(
    connection: aiosqlite.Connection,
) -> None:
    await write_atomically(connection, [an_audit_row("a"), an_audit_row("b")])

    counted, listed = await read_together(
        connection,
        [
            ("SELECT count(*) FROM admin_audit", ()),
            ("SELECT action FROM admin_audit ORDER BY id", ()),
        ],
    )

    assert [tuple(row) for row in counted] == [(2,)]
    assert [row["action"] for row in listed] == ["a", "b"]
