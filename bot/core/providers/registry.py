"""One client per configured provider, of the type its settings name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import aiohttp

from bot.core.config import (
    AimlProviderSettings,
    ApikleyProviderSettings,
    ProviderSettings,
    Secrets,
    Settings,
)
from bot.core.images import ImageSpool
from bot.core.providers.aimlapi import AimlProvider
from bot.core.providers.apikley import ApikleyProvider
from bot.core.providers.base import ImageProvider
from bot.core.providers.http import HttpClient
from bot.core.providers.image_sources import public_only_session
from bot.core.providers.replicate import ReplicateProvider


def build_provider(
    name: str, settings: ProviderSettings, secrets: Secrets, http: HttpClient
) -> ImageProvider:
    api_key = secrets.provider_api_keys[name]
    if isinstance(settings, AimlProviderSettings):
        return AimlProvider(name, settings, api_key=api_key, http=http)
    if isinstance(settings, ApikleyProviderSettings):
        return ApikleyProvider(
            name,
            settings,
            api_key=api_key,
            webhook_key=secrets.webhook_secrets.get(name),
            http=http,
        )
    return ReplicateProvider(
        name,
        settings,
        api_key=api_key,
        webhook_secret=secrets.webhook_secrets.get(name),
        http=http,
    )


def build_providers(
    settings: Settings, secrets: Secrets, http: HttpClient
) -> dict[str, ImageProvider]:
    """One client per configured provider that has its API key."""
    return {
        name: build_provider(name, provider_settings, secrets, http)
        for name, provider_settings in settings.providers.items()
        if name in secrets.provider_api_keys
    }


@contextlib.asynccontextmanager
async def provider_clients(
    settings: Settings, secrets: Secrets, *, spool: ImageSpool | None = None
) -> AsyncIterator[Mapping[str, ImageProvider]]:
    """Providers sharing one HTTP session (and one for images on public hosts), closed on
    exit. Images are downloaded into ``spool``: pass the ImageStore's that will save them."""
    async with (
        aiohttp.ClientSession(headers={"User-Agent": "imagine-bot"}) as session,
        public_only_session() as public_session,
    ):
        http = HttpClient(session, public_session=public_session, spool=spool)
        yield build_providers(settings, secrets, http)
