"""The web gallery (issue 12): placeholder until its routes land."""

from __future__ import annotations

from aiohttp import web

from bot.core.library import LibraryService


def add_gallery_routes(app: web.Application, library: LibraryService, *, per_page: int) -> None:
    """Serve ``/gallery/{guild_id}`` from ``app``."""
