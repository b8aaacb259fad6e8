"""/prompts: the community prompt library in Discord (issue 12): placeholder."""

from __future__ import annotations

from discord.ext import commands

from bot.core.library import LibraryService


class LibraryCog(commands.Cog):
    def __init__(self, bot: commands.Bot, library: LibraryService) -> None:
        self._bot = bot
        self._library = library
