"""SQLite connection with numbered migrations, the only place that opens the database."""

from __future__ import annotations

import logging
import re
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.core.storage.sqlite_dialect import BEGIN_WRITE, CONNECTION_PRAGMAS

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str]]:
    """Numbered SQL scripts shipped in ``migrations/``, in order."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("bot.core.storage").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return found


async def open_database(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) and migrate the database at ``path``, with the settings of
    ``CONNECTION_PRAGMAS`` (WAL, synchronous = NORMAL, foreign keys, busy timeout)."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = await aiosqlite.connect(path, isolation_level=None)
    connection.row_factory = aiosqlite.Row
    try:
        for pragma in CONNECTION_PRAGMAS:
            await connection.execute(pragma)
        await _migrate(connection)
    except BaseException:
        await connection.close()
        raise
    return connection


async def _migrate(connection: aiosqlite.Connection) -> None:
    async with connection.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    for number, script in migrations():
        if number <= current:
            continue
        log.info("applying database migration %04d", number)
        # executescript would commit implicitly; BEGIN … COMMIT keeps each migration atomic.
        await connection.executescript(
            f"{BEGIN_WRITE};\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
        )
