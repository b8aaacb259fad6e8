"""The SQL of this package that is SQLite's own, in one place.

The repositories' other SQL is what SQLite and PostgreSQL both accept (``ON CONFLICT``,
``RETURNING``, ``COALESCE``, ``CASE``), apart from the placeholder style, which follows the
driver. A PostgreSQL backend supplies its own value for each name here; the migrations in
``migrations/`` are SQLite's schema and would get a counterpart of their own.
"""

from __future__ import annotations

# Run on every new connection, in this order.
CONNECTION_PRAGMAS = (
    # Readers proceed during a write, and a commit is one append to the write-ahead log.
    "PRAGMA journal_mode = WAL",
    # Under WAL, NORMAL syncs the log only at checkpoints, not at every commit. A commit that
    # has returned is in the operating system's cache, so it survives the process being killed
    # (kill -9, a crash), which is what the restart tests exercise. Only a power loss or an OS
    # crash can lose the last commits, and even then the file is never corrupted.
    "PRAGMA synchronous = NORMAL",
    # Off by default in SQLite, and a per-connection setting.
    "PRAGMA foreign_keys = ON",
    # Rides out a second process, such as ``imagine-bot generate``, writing the same file.
    "PRAGMA busy_timeout = 5000",
)

# Starts a transaction that takes the write lock at once, so two connections' multi-statement
# changes queue up on busy_timeout instead of one failing when it first writes.
BEGIN_WRITE = "BEGIN IMMEDIATE"
# Starts a transaction that takes no lock until its first read: a snapshot for several reads.
BEGIN_READ = "BEGIN DEFERRED"

# Hands back the rows a statement wrote, saving a SELECT. SQLite returns them in no particular
# order, so callers sort them.
RETURNING_ROW = "RETURNING *"


# A FROM item with one row per job of a request, its column ``n`` running from 1 to the
# ``:jobs`` parameter (PostgreSQL: ``generate_series(1, :jobs) AS batch(n)``).
BATCH_ROWS = """
    (WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < :jobs)
     SELECT n FROM numbers) AS batch
"""


def greatest(first: str, second: str) -> str:
    """The larger of two values (PostgreSQL: ``GREATEST``); SQLite's MAX with two arguments
    is a scalar function, not the aggregate."""
    return f"MAX({first}, {second})"


def least(first: str, second: str) -> str:
    """The smaller of two values (PostgreSQL: ``LEAST``)."""
    return f"MIN({first}, {second})"
