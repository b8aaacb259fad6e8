from __future__ import annotations

from pathlib import Path

from bot.core.storage.database import migrations, open_database


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
