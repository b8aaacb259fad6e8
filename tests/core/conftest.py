"""Fixtures for the core's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from bot.core.providers.http import HttpClient
from tests.core.job_bench import Bench
from tests.fakes.fake_replicate import FakeReplicate


@pytest.fixture
async def bench(
    connection: aiosqlite.Connection,
    fake_replicate: FakeReplicate,
    http: HttpClient,
    tmp_path: Path,
) -> AsyncIterator[Bench]:
    bench = Bench(connection, fake_replicate, http, tmp_path)
    yield bench
    await bench.close()
