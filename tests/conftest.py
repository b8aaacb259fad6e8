from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiosqlite
import pytest

from bot.core.domain import DiscordTarget, GenerationRequest, Job, Reservation
from bot.core.providers.http import HttpClient
from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from tests.factories import a_request, a_reservation, a_target
from tests.fakes.fake_aiml import FakeAiml
from tests.fakes.fake_apikley import FakeApikley
from tests.fakes.fake_replicate import FakeReplicate


@pytest.fixture
async def connection(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await open_database(tmp_path / "bot.sqlite3")
    yield connection
    await connection.close()


@pytest.fixture
def repository(connection: aiosqlite.Connection) -> JobRepository:
    return JobRepository(connection)


async def table_snapshot(connection: aiosqlite.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, to prove that a rejected request changed nothing."""
    snapshot: dict[str, list[tuple[object, ...]]] = {}
    async with connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ) as cursor:
        tables = [row[0] for row in await cursor.fetchall()]
    for table in tables:
        # Sorted here, not by rowid: the search index's shadow tables have none.
        async with connection.execute(f"SELECT * FROM {table}") as cursor:  # noqa: S608
            snapshot[table] = sorted((tuple(row) for row in await cursor.fetchall()), key=repr)
    return snapshot


async def move_to_submitted(
    repository: JobRepository, job_id: int, *, provider: str = "replicate", prediction: str = "p1"
) -> None:
    assert await repository.mark_submitting(job_id, provider=provider, now=2)
    assert await repository.mark_submitted(
        job_id, provider=provider, provider_job_id=prediction, now=3
    )


@pytest.fixture
async def fake_replicate() -> AsyncIterator[FakeReplicate]:
    """Official Replicate: signed webhooks, urls on its own host."""
    async with FakeReplicate(mode="official") as fake:
        yield fake


@pytest.fixture
async def fake_proxy() -> AsyncIterator[FakeReplicate]:
    """A kkiai-style proxy: no webhooks, urls.* on a host nobody serves."""
    async with FakeReplicate(mode="proxy") as fake:
        yield fake


@pytest.fixture
async def fake_aiml() -> AsyncIterator[FakeAiml]:
    """AIML API: synchronous generations, errors in its own JSON shape."""
    async with FakeAiml(latency=0.01) as fake:
        yield fake


@pytest.fixture
async def fake_apikley() -> AsyncIterator[FakeApikley]:
    """Apikley: tasks walking waiting → generating → success, HTTP-200 error envelopes."""
    async with FakeApikley(stage_seconds=0.01, processing_seconds=0.05) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session)


async def stored_job(
    repository: JobRepository,
    request: GenerationRequest | None = None,
    target: DiscordTarget | None = None,
    *,
    callback_token: str = "token",
    now: float = 1.0,
    reservation: Reservation | None = None,
) -> Job:
    """A queued job stored without limits getting in the way."""
    [job] = await repository.create(
        request or a_request(),
        target or a_target(),
        callback_token=callback_token,
        now=now,
        reservation=reservation or a_reservation(),
    )
    return job
