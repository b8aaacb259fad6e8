from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
import pytest

from bot.core.storage.batching import WriteBatcher
from tests.counting import counting_round_trips


async def notes_table(connection: aiosqlite.Connection) -> None:
    await connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT UNIQUE)")


async def notes(connection: aiosqlite.Connection) -> list[str]:
    rows = await connection.execute_fetchall("SELECT text FROM notes ORDER BY id")
    return [row[0] for row in rows]


async def test_writes_issued_together_share_one_round_trip(
    connection: aiosqlite.Connection,
) -> None:
    await notes_table(connection)
    batcher = WriteBatcher(connection)

    with counting_round_trips(connection) as trips:
        await asyncio.gather(
            *(batcher.execute("INSERT INTO notes (text) VALUES (?)", (f"n{n}",)) for n in range(50))
        )

    assert trips.count == 1, trips.calls
    assert await notes(connection) == [f"n{n}" for n in range(50)]


async def test_each_write_of_a_batch_sees_the_ones_before_it(
    connection: aiosqlite.Connection,
) -> None:
    await notes_table(connection)
    batcher = WriteBatcher(connection)
    only_three = (
        "INSERT INTO notes (text) SELECT ? WHERE (SELECT count(*) FROM notes) < 3 RETURNING id"
    )

    inserted = await asyncio.gather(*(batcher.execute(only_three, (f"n{n}",)) for n in range(10)))

    assert sum(len(rows) for rows in inserted) == 3
    assert await notes(connection) == ["n0", "n1", "n2"]


async def test_a_write_that_fails_fails_only_its_caller(connection: aiosqlite.Connection) -> None:
    await notes_table(connection)
    await connection.execute("INSERT INTO notes (text) VALUES ('taken')")
    batcher = WriteBatcher(connection)
    insert = "INSERT INTO notes (text) VALUES (?)"

    outcomes = await asyncio.gather(
        batcher.execute(insert, ("before",)),
        batcher.execute(insert, ("taken",)),
        batcher.execute(insert, ("after",)),
        return_exceptions=True,
    )

    assert outcomes[0] == []
    assert outcomes[2] == []
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    assert await notes(connection) == ["taken", "before", "after"]


async def test_writes_issued_while_a_batch_runs_go_in_the_next_one(
    connection: aiosqlite.Connection,
) -> None:
    await notes_table(connection)
    batcher = WriteBatcher(connection)
    insert = "INSERT INTO notes (text) VALUES (?)"

    with counting_round_trips(connection) as trips:
        first = asyncio.create_task(batcher.execute(insert, ("first",)))
        await asyncio.sleep(0)  # the caller's task runs and starts the batch's task
        await asyncio.sleep(0)  # which hands the first write to the thread
        assert trips.calls == ["transaction"]
        await asyncio.gather(first, *(batcher.execute(insert, (f"n{n}",)) for n in range(5)))

    assert trips.count == 2, trips.calls  # the first alone, then the five together
    assert await notes(connection) == ["first", "n0", "n1", "n2", "n3", "n4"]


async def test_a_write_on_a_closed_connection_fails_at_once(
    connection: aiosqlite.Connection,
) -> None:
    await notes_table(connection)
    batcher = WriteBatcher(connection)
    await connection.close()

    with pytest.raises(ValueError, match="connection"):
        await batcher.execute("INSERT INTO notes (text) VALUES ('late')", ())
