"""Small builders for domain objects, so each test states only what it is about."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from bot.core.clock import SystemClock
from bot.core.config import (
    AimlProviderSettings,
    ApikleyProviderSettings,
    ReplicateProviderSettings,
)
from bot.core.domain import (
    AspectRatio,
    DiscordTarget,
    GenerationRequest,
    Member,
    OutputFormat,
    Reservation,
    SafetyLevel,
    Tier,
)
from bot.core.images import Image, ImageStore
from bot.core.providers.aimlapi import AimlProvider
from bot.core.providers.apikley import ApikleyProvider
from bot.core.providers.http import HttpClient
from bot.core.providers.replicate import ReplicateProvider
from tests.fakes.fake_aiml import FakeAiml
from tests.fakes.fake_apikley import FakeApikley
from tests.fakes.fake_replicate import FakeReplicate

GUILD_ID = 1_000_000_000_000_001
CHANNEL_ID = 1_000_000_000_000_002
USER_ID = 1_000_000_000_000_003
APPLICATION_ID = 1_000_000_000_000_004
A_MEMBER = Member(guild_id=GUILD_ID, user_id=USER_ID)


class ManualClock:
    """A clock that moves only when a test says so."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InstantClock:
    """A Clock for the core on a ManualClock's time, whose sleeps and timed waits end at once
    and move that time on: submits, refusals and resets read exactly the moment a test set.
    For services that are never started: a running dispatcher's first timed wait would jump
    past every queued job's deadline."""

    def __init__(self, manual: ManualClock) -> None:
        self.manual = manual

    def now(self) -> float:
        return self.manual()

    async def sleep(self, seconds: float) -> None:
        self.manual.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # still a turn of the loop, as a real sleep is

    async def wait(self, event: asyncio.Event, timeout: float | None) -> bool:
        await asyncio.sleep(0)
        if event.is_set() or timeout is None:
            await event.wait()
            return True
        self.manual.advance(max(0.0, timeout))
        return False


class SkippingClock(SystemClock):
    """Wall time, except that a sleep jumps over its pause at once: back-offs, Retry-After
    pauses and retry delays cost a test nothing, while polls and callbacks still take the
    real time the fakes need to answer."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return time.time() + self.skipped

    async def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)
        await asyncio.sleep(0)


def a_request(prompt: str = "a lighthouse at dusk", **overrides: object) -> GenerationRequest:
    fields: dict[str, object] = {
        "prompt": prompt,
        "tier": Tier.FAST,
        "aspect_ratio": AspectRatio.LANDSCAPE_WIDE,
        "safety": SafetyLevel.BLOCK_MEDIUM_AND_ABOVE,
        "output_format": OutputFormat.JPG,
    }
    fields.update(overrides)
    return GenerationRequest(**fields)  # type: ignore[arg-type]


def a_target(**overrides: object) -> DiscordTarget:
    fields: dict[str, object] = {
        "guild_id": GUILD_ID,
        "channel_id": CHANNEL_ID,
        "user_id": USER_ID,
        "application_id": APPLICATION_ID,
        "interaction_token": "interaction-token",
        "interaction_expires_at": datetime.now(UTC) + timedelta(minutes=15),
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    fields.update(overrides)
    return DiscordTarget(**fields)  # type: ignore[arg-type]


def replicate_settings(fake: FakeReplicate, **overrides: object) -> ReplicateProviderSettings:
    """Settings for a Replicate provider pointed at a fake, in the fake's webhook mode."""
    fields: dict[str, object] = {
        "base_url": fake.base_url,
        "webhook_mode": "signed" if fake.mode == "official" else "token",
        "request_timeout_seconds": 5.0,
    }
    fields.update(overrides)
    return ReplicateProviderSettings.model_validate(fields)


def a_replicate_provider(
    fake: FakeReplicate,
    http: HttpClient,
    *,
    name: str = "replicate",
    api_key: str | None = None,
    **overrides: object,
) -> ReplicateProvider:
    return ReplicateProvider(
        name,
        replicate_settings(fake, **overrides),
        api_key=SecretStr(api_key or fake.token),
        webhook_secret=None,
        http=http,
    )


def aiml_settings(fake: FakeAiml, **overrides: object) -> AimlProviderSettings:
    fields: dict[str, object] = {
        "type": "aimlapi",
        "base_url": fake.base_url,
        "request_timeout_seconds": 5.0,
    }
    fields.update(overrides)
    return AimlProviderSettings.model_validate(fields)


def an_aiml_provider(
    fake: FakeAiml, http: HttpClient, *, api_key: str | None = None, **overrides: object
) -> AimlProvider:
    return AimlProvider(
        "aimlapi",
        aiml_settings(fake, **overrides),
        api_key=SecretStr(api_key or fake.token),
        http=http,
    )


def an_apikley_provider(
    fake: FakeApikley,
    http: HttpClient,
    *,
    api_key: str | None = None,
    webhook_key: str | None = None,
    clock: Callable[[], float] | None = None,
    **overrides: object,
) -> ApikleyProvider:
    fields: dict[str, object] = {
        "type": "apikley",
        "base_url": fake.base_url,
        "request_timeout_seconds": 5.0,
    }
    fields.update(overrides)
    return ApikleyProvider(
        "apikley",
        ApikleyProviderSettings.model_validate(fields),
        api_key=SecretStr(api_key or fake.token),
        webhook_key=None if webhook_key is None else SecretStr(webhook_key),
        http=http,
        clock=clock or fake.clock,
    )


def a_reservation(**overrides: object) -> Reservation:
    """A reservation that fits any usage unless a test sets a limit."""
    fields: dict[str, object] = {
        "credits": 1,
        "member_daily": None,
        "member_monthly": None,
        "guild_monthly": None,
        "max_queued_per_member": None,
        "max_queued_per_guild": None,
        "day_start": 0.0,
        "month_start": 0.0,
        "member_counted_since_day": 0.0,
        "member_counted_since_month": 0.0,
    }
    fields.update(overrides)
    return Reservation(**fields)  # type: ignore[arg-type]


def spooled(store: ImageStore, data: bytes, extension: str) -> Image:
    """``data`` in the store's spool, unchecked, as a download leaves an image for saving."""
    with store.spool.new_file() as file:
        file.write(data)
    return Image(file.path, extension)
