"""Core services wired the way the composition root wires them, for tests of the core."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import aiosqlite

from bot.core.config import Settings
from bot.core.delivery import DeliveryService, Publisher
from bot.core.images import ImageStore
from bot.core.jobs import JobService
from bot.core.providers.base import ImageProvider
from bot.core.quotas import QuotaService
from bot.core.routing import Router, router_for
from bot.core.storage.jobs import JobRepository
from bot.core.storage.quotas import QuotaRepository


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
    clock: Callable[[], float] = time.time,
) -> JobService:
    """A job service with delivery retries off, so a failed post shows at once."""
    repository = JobRepository(connection)
    return JobService(
        repository=repository,
        quotas=quota_service(connection, settings, clock=clock),
        providers=providers,
        router=router or router_for(settings, providers, clock=clock),
        tiers=settings.tiers,
        images=images,
        delivery=DeliveryService(publisher, images, repository, retry_delays=()),
        settings=settings.jobs,
        queue=settings.queue,
        max_prompt_length=settings.discord.max_prompt_length,
        public_url=public_url,
        clock=clock,
    )
