"""The composition root: builds everything once, runs it in one event loop, shuts it down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiohttp import web

from bot.client import ImagineBot
from bot.core.config import Secrets, Settings
from bot.core.delivery import DeliveryService
from bot.core.images import ImageStore
from bot.core.jobs import JobService
from bot.core.listener import create_listener_app
from bot.core.providers.registry import provider_clients
from bot.core.quotas import QuotaService
from bot.core.routing import router_for
from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from bot.core.storage.quotas import QuotaRepository
from bot.publisher import DiscordPublisher
from cogs.admin import AdminCog
from cogs.imagine import ImagineCog
from cogs.queue import QueueCog
from cogs.quota import QuotaCog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Application:
    bot: ImagineBot
    jobs: JobService
    listener: web.AppRunner

    @property
    def listener_port(self) -> int:
        """The bound port (useful when the config asks for port 0)."""
        site = next(iter(self.listener.sites))
        server = site._server  # aiohttp exposes no public accessor
        assert isinstance(server, asyncio.Server)
        return int(server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, secrets: Secrets, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[Application]:
    """Open the database, build providers and services, start the callback listener."""
    async with contextlib.AsyncExitStack() as stack:
        database = await open_database(settings.database.path)
        stack.push_async_callback(database.close)
        # Admin changes are multi-statement transactions. On a connection of their own no
        # job write can land inside one and be rolled back with it; SQLite serialises the
        # two connections' writes (WAL, busy_timeout).
        settings_database = await open_database(settings.database.path)
        stack.push_async_callback(settings_database.close)
        providers = await stack.enter_async_context(provider_clients(settings, secrets))
        repository = JobRepository(database)
        quotas = QuotaService(
            repository=QuotaRepository(settings_database),
            jobs=repository,
            tiers=settings.tiers,
            quotas=settings.quotas,
            queue=settings.queue,
            clock=clock,
        )
        router = router_for(settings, providers, clock=clock)
        images = ImageStore(settings.images.dir)
        bot = ImagineBot(sync_commands=settings.discord.sync_commands)
        stack.push_async_callback(bot.close)
        delivery = DeliveryService(DiscordPublisher(bot), images, repository, clock=clock)
        public_url = settings.webhook.public_url
        jobs = JobService(
            repository=repository,
            quotas=quotas,
            providers=providers,
            router=router,
            tiers=settings.tiers,
            images=images,
            delivery=delivery,
            settings=settings.jobs,
            queue=settings.queue,
            max_prompt_length=settings.discord.max_prompt_length,
            public_url=str(public_url) if public_url else None,
            clock=clock,
        )
        for cog in (
            ImagineCog(jobs),
            QueueCog(bot, jobs),
            QuotaCog(quotas),
            AdminCog(quotas, router),
        ):
            await bot.add_cog(cog)
        listener = web.AppRunner(
            create_listener_app(jobs, max_body_bytes=settings.webhook.max_body_bytes),
            access_log=None,
        )
        await listener.setup()
        stack.push_async_callback(listener.cleanup)
        await web.TCPSite(
            listener, settings.webhook.listen_host, settings.webhook.listen_port
        ).start()
        # Registered last so it runs first on exit: jobs stop before Discord and HTTP close.
        stack.push_async_callback(jobs.stop)
        yield Application(bot=bot, jobs=jobs, listener=listener)


async def serve(application: Application, *, token: str, stop: asyncio.Event) -> None:
    """Log in, resume unfinished jobs, and stay connected until ``stop`` is set."""
    await application.bot.login(token)
    # Jobs resume after login: delivery needs Discord's REST API, not the gateway.
    await application.jobs.start()
    connection = asyncio.create_task(application.bot.connect(), name="discord-gateway")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    done, _ = await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if connection in done:
        connection.result()  # re-raise a fatal gateway error (bad token, intents)
    else:
        await application.bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await connection


async def run(settings: Settings, secrets: Secrets) -> None:
    """Run the bot until SIGINT or SIGTERM."""
    assert secrets.discord_token is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with assemble(settings, secrets) as application:
        log.info(
            "callback listener on %s:%s (%s)",
            settings.webhook.listen_host,
            application.listener_port,
            "callbacks on" if settings.webhook.public_url else "no public URL: polling",
        )
        await serve(application, token=secrets.discord_token.get_secret_value(), stop=stop)
    log.info("stopped cleanly")
