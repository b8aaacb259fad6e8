"""/imagine-admin library: moderating the prompt library (issue 12): placeholder."""

from __future__ import annotations

from discord import app_commands

from bot.core.library import LibraryService


class LibraryAdminGroup(app_commands.Group):
    def __init__(self, library: LibraryService) -> None:
        super().__init__(name="library", description="Moderate the shared prompt library")
        self._library = library
