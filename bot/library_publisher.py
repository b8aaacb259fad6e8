"""Posts shared prompts in a server's gallery channel (issue 12): placeholder."""

from __future__ import annotations

from pathlib import Path

import discord

from bot.core.storage.library_protocol import LibraryEntry


class GalleryChannelPoster:
    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def post_entry(self, channel_id: int, entry: LibraryEntry, image: Path) -> int:
        raise NotImplementedError

    async def delete_post(self, channel_id: int, message_id: int) -> None:
        raise NotImplementedError
