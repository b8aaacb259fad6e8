"""A job service on a bench: fake Replicate, real SQLite, a recording publisher and, on
request, a live callback listener; shared by the job service's test modules."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiosqlite
from aiohttp import web

from bot.core.blocklist import BlocklistService
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.dispatcher import PROGRESS_INTERVAL
from bot.core.domain import Job, JobState
from bot.core.images import ImageStore
from bot.core.jobs import JobService
from bot.core.listener import create_listener_app
from bot.core.providers.http import HttpClient
from bot.core.storage.jobs import JobRepository
from tests.factories import A_MEMBER, a_replicate_provider, a_request, a_target
from tests.fakes.fake_replicate import FakeReplicate
from tests.fakes.recording_publisher import RecordingPublisher
from tests.services import job_service

ENDED = (JobState.DELIVERED, JobState.UNDELIVERABLE)
# Polls a minute apart: only a callback can end such a job within a test's time.
SLOW_POLLS = {"poll_initial_seconds": 60.0, "poll_max_seconds": 60.0}


class Bench:
    """Job services wired to a fake Replicate, a recording publisher and, on request, a live
    callback listener; everything started here is stopped at the end of the test."""

    def __init__(
        self,
        connection: aiosqlite.Connection,
        fake: FakeReplicate,
        http: HttpClient,
        tmp_path: Path,
    ) -> None:
        self.connection = connection
        self.database = tmp_path / "bot.sqlite3"  # the connection fixture's file
        self.repository = JobRepository(connection)
        self.fake = fake
        self.http = http
        self.images = ImageStore(tmp_path / "images")
        self.publisher = RecordingPublisher()
        # The callback base URL of the last service built with callbacks on.
        self.public_url: str | None = None
        self._services: list[JobService] = []
        self._listeners: list[web.AppRunner] = []

    async def service(
        self,
        *,
        callbacks: bool = False,
        provider: dict[str, Any] | None = None,
        clock: Clock | None = None,
        progress_interval: float = PROGRESS_INTERVAL,
        blocklist: BlocklistService | None = None,
        **sections: dict[str, Any],
    ) -> JobService:
        """A job service on the bench's database; ``sections`` are config.toml sections."""
        listening: socket.socket | None = None
        public_url = None
        if callbacks:
            # Bound before the service exists, so the callback URL names a port already ours.
            listening = socket.create_server(("127.0.0.1", 0))
            public_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
            self.public_url = public_url
        jobs_section = {
            "poll_initial_seconds": 0.05,
            "poll_max_seconds": 0.2,
            **sections.pop("jobs", {}),
        }
        settings = Settings.model_validate({"jobs": jobs_section, **sections})
        jobs = job_service(
            self.connection,
            providers={"replicate": a_replicate_provider(self.fake, self.http, **(provider or {}))},
            publisher=self.publisher,
            images=self.images,
            settings=settings,
            public_url=public_url,
            clock=clock,
            progress_interval=progress_interval,
            blocklist=blocklist,
        )
        self._services.append(jobs)
        if listening is not None:
            runner = web.AppRunner(create_listener_app(jobs, max_body_bytes=256 * 1024))
            await runner.setup()
            self._listeners.append(runner)
            await web.SockSite(runner, listening).start()
        return jobs

    async def close(self) -> None:
        for jobs in self._services:
            await jobs.stop()
        for runner in self._listeners:
            await runner.cleanup()

    async def ended(self, job_id: int) -> Job:
        """The job once delivered or given up on."""
        return await self.reaches(job_id, ENDED)

    async def reaches(self, job_id: int, states: tuple[JobState, ...]) -> Job:
        async with asyncio.timeout(10.0):
            while True:
                job = await self.repository.get(job_id)
                assert job is not None
                if job.state in states:
                    return job
                await asyncio.sleep(0.02)


async def run_one(bench: Bench, jobs: JobService, **request: Any) -> Job:
    await jobs.start()
    job = (await jobs.submit(a_request(**request), a_target(), A_MEMBER)).jobs[0]
    return await bench.ended(job.id)
