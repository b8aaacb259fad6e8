"""The Discord client: intents, defaults, and command sync at login."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.tree import ImagineCommandTree

log = logging.getLogger(__name__)


class ImagineBot(commands.Bot):
    """Slash commands only: no message content intent and no prefix commands.

    ``allowed_mentions`` defaults to none, so no message the bot sends can ping anyone unless
    that one call says so explicitly.
    """

    def __init__(self, *, sync_commands: bool) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            tree_cls=ImagineCommandTree,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
        )
        self._sync_commands = sync_commands

    async def setup_hook(self) -> None:
        if self._sync_commands:
            synced = await self.tree.sync()
            log.info("synced %d application command(s)", len(synced))

    async def on_ready(self) -> None:
        log.info("connected as %s in %d guild(s)", self.user, len(self.guilds))
