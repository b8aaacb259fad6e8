"""SQLite connection with numbered migrations, the only place that opens the database."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.core.storage.sqlite_dialect import BEGIN_READ, BEGIN_WRITE, CONNECTION_PRAGMAS

log = logging.getLogger(__name__)

T = TypeVar("T")
Parameters = Mapping[str, object] | Sequence[object]
Statement = tuple[str, Parameters]

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


async def on_connection_thread(
    connection: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]
) -> T:
    """Run ``work`` with the connection on its own thread, as one hand-off.

    aiosqlite runs each of its calls this way (``Connection._execute``: a queue put, a thread
    switch, a future resolved on the loop) but has no public method for a function of ours.
    This is the one place that reaches for it: several statements then cost one hand-off, and
    no other coroutine's statement on the shared connection can land between them.
    """
    sqlite = connection._conn
    result: T = await connection._execute(work, sqlite)  # type: ignore[no-untyped-call]
    return result


async def read_together(
    connection: aiosqlite.Connection, statements: Sequence[Statement]
) -> list[list[sqlite3.Row]]:
    """Each statement's rows, read in one transaction and one hand-off: one snapshot, even
    with another process (``imagine-bot generate``) writing the file meanwhile."""
    return await transaction(connection, _rows_of(statements), begin=BEGIN_READ)


async def write_atomically(
    connection: aiosqlite.Connection, statements: Sequence[Statement]
) -> list[list[sqlite3.Row]]:
    """Run ``statements`` as one transaction in one hand-off, returning each one's rows: all of
    them take effect or, if one fails, none. No other coroutine's statement on the shared
    connection can land inside it, so none can be rolled back with it or see half of it."""
    return await transaction(connection, _rows_of(statements))


async def transaction(
    connection: aiosqlite.Connection,
    work: Callable[[sqlite3.Connection], T],
    *,
    begin: str = BEGIN_WRITE,
) -> T:
    """Run ``work`` in one transaction and one hand-off, also for a change whose statements
    depend on what the ones before them found (a count against a cap, a row to audit): it
    commits when ``work`` returns and is rolled back when it raises."""

    def in_transaction(sqlite: sqlite3.Connection) -> T:
        sqlite.execute(begin)
        try:
            result = work(sqlite)
            sqlite.execute("COMMIT")
        except BaseException:
            _roll_back(sqlite)
            raise
        return result

    return await on_connection_thread(connection, in_transaction)


def _rows_of(
    statements: Sequence[Statement],
) -> Callable[[sqlite3.Connection], list[list[sqlite3.Row]]]:
    def rows(sqlite: sqlite3.Connection) -> list[list[sqlite3.Row]]:
        return [sqlite.execute(sql, parameters).fetchall() for sql, parameters in statements]

    return rows


async def write_each(
    connection: aiosqlite.Connection, statements: Sequence[Statement]
) -> list[list[sqlite3.Row] | sqlite3.Error]:
    """Run independent ``statements`` in one transaction and one hand-off, each seeing the
    ones before it, and return each one's rows or its error.

    A statement that fails (a constraint, say) is undone alone: SQLite aborts the statement,
    not the transaction, and the others commit together. If SQLite has ended the transaction
    itself (a full disk, an I/O error), nothing of it stands and every statement fails.
    """

    def transaction(sqlite: sqlite3.Connection) -> list[list[sqlite3.Row] | sqlite3.Error]:
        sqlite.execute(BEGIN_WRITE)
        outcomes: list[list[sqlite3.Row] | sqlite3.Error] = []
        try:
            for sql, parameters in statements:
                try:
                    outcomes.append(sqlite.execute(sql, parameters).fetchall())
                except sqlite3.Error as error:
                    if not sqlite.in_transaction:
                        raise
                    outcomes.append(error)
            sqlite.execute("COMMIT")
        except BaseException:
            _roll_back(sqlite)
            raise
        return outcomes

    return await on_connection_thread(connection, transaction)


def _roll_back(sqlite: sqlite3.Connection) -> None:
    if sqlite.in_transaction:
        sqlite.execute("ROLLBACK")
