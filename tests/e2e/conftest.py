"""The whole bot, built by the real composition root, against fake Discord and fake Replicate.

discord.py is unmodified: it talks HTTP and a zlib-stream websocket to the fake Discord on
127.0.0.1; the bot's provider client talks to the fake Replicate, which signs webhooks and
posts them to the bot's own callback listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.core.config import Secrets, Settings
from bot.core.domain import Tier
from bot.runner import Application, assemble, serve
from tests.fakes.fake_aiml import FakeAiml
from tests.fakes.fake_apikley import FakeApikley
from tests.fakes.fake_discord import (
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
    FakeDiscord,
    FakeInteraction,
    point_discord_py_at,
)
from tests.fakes.fake_replicate import FakeReplicate


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        return int(listening.getsockname()[1])


@dataclass
class Providers:
    """One fake of each provider type, all configured; tiers pick which ones they use."""

    replicate: FakeReplicate
    aiml: FakeAiml
    apikley: FakeApikley
    kkiai: FakeReplicate  # a Replicate-compatible proxy, as the seed documents

    def settings(self) -> dict[str, dict[str, Any]]:
        return {
            "replicate": {
                "base_url": self.replicate.base_url,
                "webhook_mode": "signed" if self.replicate.mode == "official" else "token",
            },
            "kkiai": {"base_url": self.kkiai.base_url, "api_key_env": "KKIAI_API_KEY"},
            "aiml": {"type": "aimlapi", "base_url": self.aiml.base_url},
            "apikley": {
                "type": "apikley",
                "base_url": self.apikley.base_url,
                "poll_intervals_seconds": [0.1, 0.2, 0.5],
            },
        }

    def secrets(self, discord_token: str) -> Secrets:
        return Secrets(
            discord_token=SecretStr(discord_token),
            provider_api_keys={
                "replicate": SecretStr(self.replicate.token),
                "aiml": SecretStr(self.aiml.token),
                "apikley": SecretStr(self.apikley.token),
                "kkiai": SecretStr(self.kkiai.token),
            },
            webhook_secrets={},
        )


def e2e_settings(
    tmp_path: Path, providers: Providers, port: int, **sections: dict[str, Any]
) -> Settings:
    """Every tier on Replicate unless ``tiers`` says otherwise."""
    return Settings.model_validate(
        {
            "database": {"path": str(tmp_path / "bot.sqlite3")},
            "images": {"dir": str(tmp_path / "images")},
            "webhook": {
                "listen_host": "127.0.0.1",
                "listen_port": port,
                "public_url": f"http://127.0.0.1:{port}",
            },
            "providers": providers.settings(),
            "tiers": {tier.value: {"providers": ["replicate"]} for tier in Tier},
            "jobs": {"poll_initial_seconds": 0.1, "poll_max_seconds": 0.5},
            **sections,
        }
    )


async def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds, for facts no event announces."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def shown_reply(interaction: FakeInteraction) -> dict[str, Any]:
    """The message a member sees in answer to an interaction: the callback's, or, after a
    deferral, the edit or followup that replaced the loading one."""
    callback = await interaction.wait_for_response()
    if callback["type"] != DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
        message: dict[str, Any] = callback["message"]
        return message

    def shown() -> bool:
        return any(r["kind"] in ("edit", "followup") for r in interaction.responses)

    await eventually(shown)
    first = next(r for r in interaction.responses if r["kind"] in ("edit", "followup"))
    replaced: dict[str, Any] = first["message"]
    return replaced


@dataclass
class RunningBot:
    discord: FakeDiscord
    replicate: FakeReplicate
    application: Application
    providers: Providers
    database: Path

    def job_states(self) -> list[str]:
        """Every job's state, read as another process would: the post reaches Discord just
        before the bot records it as delivered."""
        with contextlib.closing(sqlite3.connect(self.database)) as connection:
            return [row[0] for row in connection.execute("SELECT state FROM jobs ORDER BY id")]

    async def command(
        self, name: str, options: Mapping[str, object] | None = None, **kwargs: Any
    ) -> tuple[FakeInteraction, dict[str, Any]]:
        """Invoke a slash command; return the interaction and the reply the member sees: the
        callback's message or, after a deferral, the message that replaced the loading one."""
        interaction = await self.discord.invoke_slash_command(name, options, **kwargs)
        reply = await interaction.wait_for_response()
        if reply["type"] != DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            return interaction, reply

        def shown() -> bool:
            return any(r["kind"] in ("edit", "followup") for r in interaction.responses)

        await eventually(shown)
        first = next(r for r in interaction.responses if r["kind"] in ("edit", "followup"))
        return interaction, {**reply, "data": first["message"]}

    async def channel_posts(self, count: int = 1) -> list[dict[str, Any]]:
        return await self.discord.wait_for_channel_message(count=count)


class BotRunner:
    """Starts the bot (possibly several times over one database) and stops it at the end."""

    def __init__(self, tmp_path: Path, discord: FakeDiscord, providers: Providers) -> None:
        self.tmp_path = tmp_path
        self.discord = discord
        self.providers = providers
        self.replicate = providers.replicate
        # One address for every run, as a deployed bot keeps its public URL across restarts.
        self.port = free_port()

    @contextlib.asynccontextmanager
    async def run(self, **sections: dict[str, Any]) -> AsyncIterator[RunningBot]:
        settings = e2e_settings(self.tmp_path, self.providers, self.port, **sections)
        secrets = self.providers.secrets(self.discord.token)
        stop = asyncio.Event()
        async with assemble(settings, secrets) as application:
            # discord.py waits 2 s after the last GUILD_CREATE before on_ready; a bot closed
            # during that wait leaves a failing task behind, so tests shorten it.
            application.bot._connection.guild_ready_timeout = 0.05
            serving = asyncio.create_task(
                serve(application, token=self.discord.token, stop=stop), name="bot"
            )
            try:
                # on_ready comes after login, command sync and the guild: the bot is all set.
                await eventually(application.bot.is_ready)
                yield RunningBot(
                    self.discord,
                    self.replicate,
                    application,
                    self.providers,
                    settings.database.path,
                )
            finally:
                stop.set()
                await serving


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        with point_discord_py_at(fake):
            yield fake


@pytest.fixture
async def runner(
    tmp_path: Path,
    fake_discord: FakeDiscord,
    fake_replicate: FakeReplicate,
    fake_aiml: FakeAiml,
    fake_apikley: FakeApikley,
    fake_proxy: FakeReplicate,
) -> BotRunner:
    providers = Providers(fake_replicate, fake_aiml, fake_apikley, fake_proxy)
    return BotRunner(tmp_path, fake_discord, providers)


@pytest.fixture
async def bot(runner: BotRunner) -> AsyncIterator[RunningBot]:
    async with runner.run() as running:
        yield running
