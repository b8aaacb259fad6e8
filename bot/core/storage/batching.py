"""Writes that arrive together share one transaction and one hand-off to SQLite's thread."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence

import aiosqlite

from bot.core.storage.database import Parameters, Statement, write_each

# Statements per batch. Bounded so the loop answers one batch's callers while SQLite's thread
# runs the next (one unbounded batch after a burst would leave each side idle in turn).
MAX_BATCH = 256


class WriteBatcher:
    """Runs each statement given to :meth:`execute` as soon as the connection is free; those
    given while a batch is on the thread go together in the next one.

    Under a burst (200 ``/imagine`` at once) each write would otherwise cost its own hand-off
    and its own commit, and the hand-off, not SQLite, is most of a small write's cost. A batch
    is one transaction of independent statements (``write_each``): each sees the ones before
    it, so conditional INSERTs that check limits stay exact, and one statement's error is its
    caller's alone. Callers are answered once the batch has committed.
    """

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._db = connection
        self._waiting: list[tuple[Statement, asyncio.Future[list[sqlite3.Row]]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def execute(self, sql: str, parameters: Parameters) -> list[sqlite3.Row]:
        """The statement's rows, once it has committed with its batch."""
        answer: asyncio.Future[list[sqlite3.Row]] = asyncio.get_running_loop().create_future()
        self._waiting.append(((sql, parameters), answer))
        if self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name="sqlite-write-batch")
        return await answer

    async def _drain(self) -> None:
        batch: list[tuple[Statement, asyncio.Future[list[sqlite3.Row]]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                outcomes: Sequence[list[sqlite3.Row] | Exception]
                try:
                    outcomes = await write_each(self._db, [statement for statement, _ in batch])
                except Exception as error:
                    outcomes = [error] * len(batch)
                for (_, answer), outcome in zip(batch, outcomes, strict=True):
                    if answer.done():  # its caller was canceled; the write stands regardless
                        continue
                    if isinstance(outcome, BaseException):
                        answer.set_exception(outcome)
                    else:
                        answer.set_result(outcome)
        finally:
            self._draining = None
            for _, answer in batch + self._waiting:  # only when canceled: nobody is left hanging
                answer.cancel()
