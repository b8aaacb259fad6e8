"""Counting round trips to SQLite, on real aiosqlite connections.

aiosqlite runs SQLite on a thread of its own and hands it every call through
``Connection._execute``: execute, executemany, executescript, execute_fetchall, each fetch
and close of a cursor, commit and rollback. Each of those hand-offs is one round trip (a
queue put, a thread switch and a future resolved on the event loop), so that is what is
counted: a cursor read row by row costs more than one ``execute_fetchall``, and it shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiosqlite


class RoundTrips:
    """How many calls reached SQLite's thread, and which, while counting."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def count(self) -> int:
        return len(self.calls)


@contextmanager
def counting_round_trips(*connections: aiosqlite.Connection) -> Iterator[RoundTrips]:
    """Count the round trips made to any of ``connections`` inside the ``with`` block."""
    trips = RoundTrips()
    for connection in connections:
        # An instance attribute shadows the class's method, for this connection and its
        # cursors (they call ``connection._execute``); removing it restores the method.
        vars(connection)["_execute"] = _counted(connection._execute, trips)
    try:
        yield trips
    finally:
        for connection in connections:
            del vars(connection)["_execute"]


def _counted(execute: Callable[..., Any], trips: RoundTrips) -> Callable[..., Any]:
    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        trips.calls.append(getattr(fn, "__name__", repr(fn)))
        return await execute(fn, *args, **kwargs)

    return counted
