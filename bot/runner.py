"""The composition root: builds everything once, runs it in one event loop, shuts it down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import discord
from aiohttp import web

from bot.buttons import result_view
from bot.client import ImagineBot
from bot.core.blocklist import BlocklistService
from bot.core.clock import Clock, SystemClock
from bot.core.config import DiscordSettings, Secrets, Settings
from bot.core.delivery import DeliveryService
from bot.core.gallery import add_gallery_routes
from bot.core.images import ImageStore
from bot.core.jobs import JobService, job_service_for
from bot.core.library import LibraryService
from bot.core.library_files import LibraryFiles
from bot.core.listener import create_listener_app
from bot.core.modlog import ModLog
from bot.core.preferences import PreferenceService
from bot.core.providers.registry import provider_clients
from bot.core.quotas import QuotaService
from bot.core.routing import router_for
from bot.core.storage.blocklist import BlocklistRepository
from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from bot.core.storage.library import LibraryRepository
from bot.core.storage.preferences import MemberDefaultsRepository
from bot.core.storage.quotas import QuotaRepository
from bot.library_publisher import GalleryChannelPoster
from bot.publisher import DiscordPublisher
from cogs.admin import AdminCog
from cogs.blocklist import BlocklistGroup
from cogs.channels import ChannelsGroup
from cogs.help import HelpCog
from cogs.imagine import ImagineCog
from cogs.jobs import JobsCog
from cogs.library import LibraryCog
from cogs.library_admin import LibraryAdminGroup
from cogs.queue import QueueCog
from cogs.quota import QuotaCog
from cogs.results import ResultsCog
from cogs.settings import ServerSettingsGroup, SettingsCog

log = logging.getLogger(__name__)


class StartupFailed(Exception):
    """The bot cannot start for a reason the operator fixes outside it; the message is one line
    saying what to do, shown instead of a traceback."""


@dataclass(frozen=True)
class Application:
    bot: ImagineBot
    jobs: JobService
    library: LibraryService
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
    settings: Settings, secrets: Secrets, *, clock: Clock | None = None
) -> AsyncIterator[Application]:
    """Open the database, build providers and services, start the callback listener."""
    clock = clock or SystemClock()
    async with contextlib.AsyncExitStack() as stack:
        database = await open_database(settings.database.path)
        stack.push_async_callback(database.close)
        # Admin changes are multi-statement transactions. On a connection of their own no
        # job write can land inside one and be rolled back with it; SQLite serialises the
        # two connections' writes (WAL, busy_timeout).
        settings_database = await open_database(settings.database.path)
        stack.push_async_callback(settings_database.close)
        images = ImageStore(settings.images.dir)
        images.spool.clear(now=clock.now())
        providers = await stack.enter_async_context(
            provider_clients(settings, secrets, spool=images.spool)
        )
        repository = JobRepository(database)
        quotas = QuotaService(
            repository=QuotaRepository(settings_database),
            jobs=repository,
            tiers=settings.tiers,
            quotas=settings.quotas,
            queue=settings.queue,
            clock=clock.now,
        )
        blocklist = BlocklistService(
            repository=BlocklistRepository(settings_database), clock=clock.now
        )
        # Members' defaults are single-statement writes; beside the admin settings they read.
        preferences = PreferenceService(
            repository=MemberDefaultsRepository(settings_database), quotas=quotas, clock=clock.now
        )
        router = router_for(settings, providers, clock=clock.now)
        bot = ImagineBot(sync_commands=settings.discord.sync_commands)
        stack.push_async_callback(bot.close)
        publisher = DiscordPublisher(bot, result_view=result_view)
        # Blocked prompts and safety-blocked jobs, posted where each server's admins chose.
        mod_log = ModLog(publisher, quotas, clock=clock)
        delivery = DeliveryService(
            publisher, images, repository, clock=clock, private_results=quotas.results_private
        )
        public_url = settings.webhook.public_url
        jobs = job_service_for(
            settings,
            repository=repository,
            quotas=quotas,
            blocklist=blocklist,
            providers=providers,
            router=router,
            images=images,
            delivery=delivery,
            public_url=str(public_url) if public_url else None,
            clock=clock,
            mod_log=mod_log,
        )
        # Shared prompts: members' likes and shares are single statements or short
        # transactions, beside the admin settings; the images live beside the jobs' own.
        library = LibraryService(
            repository=LibraryRepository(settings_database),
            jobs=jobs,
            blocklist=blocklist,
            files=LibraryFiles(settings.images.dir / "library"),
            mod_log=mod_log,
            gallery=GalleryChannelPoster(bot),
            web_gallery_enabled=settings.gallery.enabled,
            clock=clock.now,
        )
        for cog in (
            ImagineCog(jobs, preferences),
            QueueCog(bot, jobs),
            QuotaCog(quotas),
            AdminCog(
                quotas,
                router,
                BlocklistGroup(blocklist),
                ServerSettingsGroup(
                    quotas, library, public_url=str(public_url) if public_url else None
                ),
                ChannelsGroup(quotas),
                LibraryAdminGroup(library),
            ),
            SettingsCog(preferences),
            JobsCog(bot, jobs, delivery),
            HelpCog(quotas),
            ResultsCog(bot, jobs),
            LibraryCog(bot, library),
        ):
            await bot.add_cog(cog)
        listener_app = create_listener_app(jobs, max_body_bytes=settings.webhook.max_body_bytes)
        if settings.gallery.enabled:
            add_gallery_routes(listener_app, library, per_page=settings.gallery.per_page)
        listener = web.AppRunner(listener_app, access_log=None)
        await listener.setup()
        stack.push_async_callback(listener.cleanup)
        host, port = settings.webhook.listen_host, settings.webhook.listen_port
        try:
            await web.TCPSite(listener, host, port).start()
        except OSError as exc:
            # getaddrinfo's errors (an unknown listen_host) carry negative numbers.
            reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror
            raise StartupFailed(
                f"cannot listen for callbacks on {host}:{port} ({reason}): stop what uses that "
                "port or set [webhook] listen_port (and listen_host) to one this machine can use"
            ) from exc
        # Registered last so it runs first on exit: jobs stop before Discord and HTTP close.
        stack.push_async_callback(jobs.stop)
        yield Application(bot=bot, jobs=jobs, library=library, listener=listener)


async def log_in(client: discord.Client, token: str, *, token_env: str) -> None:
    """Log ``client`` in; what the operator must fix is a StartupFailed, never the token."""
    try:
        await client.login(token)
    except discord.LoginFailure as exc:
        raise StartupFailed(
            f"Discord refused the bot token in {token_env}: reset the token in the developer "
            f"portal (Bot, Reset Token) and set {token_env} to the new one"
        ) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            # discord.py waits out Discord's own rate limits; a 429 that reaches here is
            # Cloudflare banning this address after many invalid requests, or limits that
            # outlasted every retry.
            raise StartupFailed(
                "Discord is rate limiting this machine (it answered 429, as Cloudflare does "
                "after too many invalid requests from one address): stop whatever else uses "
                "this address with a wrong token, wait up to an hour, and start again"
            ) from exc
        if exc.status < 500:
            raise StartupFailed(
                f"Discord refused to log the bot in (it answered {exc.status}): check the "
                f"token in {token_env} and https://discordstatus.com"
            ) from exc
        raise StartupFailed(_unreachable(f"it answered {exc.status}")) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StartupFailed(_unreachable(str(exc) or type(exc).__name__)) from exc


def _unreachable(reason: str) -> str:
    return (
        f"cannot reach Discord ({' '.join(reason.split())}): check this machine's network, "
        "proxy and firewall, and https://discordstatus.com"
    )


async def serve(
    application: Application,
    *,
    token: str,
    stop: asyncio.Event,
    token_env: str = DiscordSettings().token_env,
) -> None:
    """Log in, resume unfinished jobs, and stay connected until ``stop`` is set."""
    await log_in(application.bot, token, token_env=token_env)
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
        await serve(
            application,
            token=secrets.discord_token.get_secret_value(),
            stop=stop,
            token_env=settings.discord.token_env,
        )
    log.info("stopped cleanly")
