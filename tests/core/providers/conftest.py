from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.core.images import ImageSpool, ImageStore
from bot.core.providers.http import HttpClient


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


@pytest.fixture
def spool(store: ImageStore) -> ImageSpool:
    """The store's spool, in the test's own directory: a test can see what a download left
    behind, and nothing outlives the test."""
    return store.spool


@pytest.fixture
async def http(spool: ImageSpool) -> AsyncIterator[HttpClient]:
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, spool=spool)
