"""Core services wired the way the composition root wires them, for tests of the core."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import aiosqlite

from bot.core.blocklist import BlocklistService
from bot.core.clock import Clock, SystemClock
from bot.core.config import Settings
from bot.core.delivery import DeliveryService, Publisher
from bot.core.dispatcher import PROGRESS_INTERVAL
from bot.core.images import ImageStore
from bot.core.jobs import JobService, job_service_for
from bot.core.providers.base import ImageProvider
from bot.core.quotas import QuotaService
from bot.core.routing import Router, router_for
from bot.core.storage.blocklist import BlocklistRepository
from bot.core.storage.jobs import JobRepository
from bot.core.storage.quotas import QuotaRepository
from tests.factories import InstantClock, ManualClock


def quota_service(
    connection: aiosqlite.Connection, settings: Settings, *, clock: Callable[[], float] = time.time
) -> QuotaService:
    return QuotaService(
        repository=QuotaRepository(connection),
        jobs=JobRepository(connection),
        tiers=settings.tiers,
        quotas=settings.quotas,
        queue=settings.queue,
        clock=clock,
    )


def job_service(
    connection: aiosqlite.Connection,
    *,
    providers: Mapping[str, ImageProvider],
    publisher: Publisher,
    images: ImageStore,
    settings: Settings,
    public_url: str | None,
    router: Router | None = None,
    blocklist: BlocklistService | None = None,
    clock: Clock | ManualClock | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
) -> JobService:
    """A job service with delivery retries off, so a failed post shows at once, and a job
    whose task died recovered after 0.05 s; given a
    ManualClock, its waits end at once on that clock (InstantClock)."""
    clock = InstantClock(clock) if isinstance(clock, ManualClock) else clock or SystemClock()
    repository = JobRepository(connection)
    return job_service_for(
        settings,
        repository=repository,
        quotas=quota_service(connection, settings, clock=clock.now),
        blocklist=blocklist or BlocklistService(repository=BlocklistRepository(connection)),
        providers=providers,
        router=router or router_for(settings, providers, clock=clock.now),
        images=images,
        delivery=DeliveryService(publisher, images, repository, retry_delays=(), clock=clock),
        public_url=public_url,
        clock=clock,
        recovery_seconds=0.05,
        progress_interval=progress_interval,
    )
