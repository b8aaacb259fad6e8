"""The web gallery (issue 12): a read-only view of a server's shared prompts, on the bot's own
callback listener, for servers whose admins opened it.

- Every URL of a guild whose gallery is closed (the operator's ``[gallery] enabled`` or the
  server's admin switch off), of an unknown guild, or with an id that is not a number answers
  the same 404 page, so the gallery never tells which servers use the bot.
- A hidden or deleted entry is looked up on every request, pages and files alike, and files are
  sent with ``Cache-Control: no-cache``: a browser may keep a copy but must ask again (a cheap
  304 with the file's ETag) before showing it, so a hidden image is gone on the next view.
- Pages are Jinja2 templates with autoescaping and ``StrictUndefined``; nothing members wrote
  is put in HTML by Python. A strict Content-Security-Policy forbids inline script and style,
  so copy-to-clipboard is a small script file of our own, the page's only script.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.core.errors import InvalidRequest
from bot.core.library import LibraryService
from bot.core.storage.library_protocol import EntryFilter, LibraryEntry, LibrarySettings, Sort
from bot.core.text import normalise

# Sent with every gallery response. Nothing but our own files may load, no page may frame
# ours, and links to elsewhere tell nobody which gallery they came from.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Pages and entry images: revalidated on every view, so hiding an entry takes effect at once.
REVALIDATE = "public, no-cache"
# The stylesheet and script change only with a new release of the bot.
STATIC_CACHE = "public, max-age=3600"
# Discord ids are positive 64-bit integers (SQLite's INTEGER holds no more).
_MAX_ID = 2**63 - 1
# Far past any real library, low enough that page x per_page stays a small SQLite offset.
MAX_PAGE = 100_000
_IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_STATIC_FILES = {
    "gallery.css": "text/css",
    "gallery.js": "text/javascript",
    # Browsers ask for an icon of every page; without one they log a 404 for /favicon.ico.
    "favicon.svg": "image/svg+xml",
}
_SORT_LABELS = {Sort.NEWEST: "Newest", Sort.MOST_LIKED: "Most liked", Sort.MOST_USED: "Most used"}
_NOT_FOUND = "There is no gallery at this address, or this entry has been removed."
BAD_PAGE = "A page number is a whole number from 1."
BAD_SORT = "Sort by newest, liked or used."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_id(text: str) -> int | None:
    """A Discord or entry id from a URL: plain ASCII digits, within SQLite's integers."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= _MAX_ID else None


@dataclass(frozen=True, slots=True)
class GridQuery:
    """What a grid page shows, as read from its URL."""

    query: str | None
    tag: str | None
    sort: Sort
    page: int

    @classmethod
    def from_url(cls, params: Mapping[str, str]) -> GridQuery:
        """InvalidRequest for a page number or sort that is not one."""
        page_text = params.get("page", "1").strip()
        if not (page_text.isascii() and page_text.isdigit()) or not 1 <= int(page_text) <= MAX_PAGE:
            raise InvalidRequest(BAD_PAGE)
        try:
            sort = Sort(params.get("sort") or Sort.NEWEST)
        except ValueError:
            raise InvalidRequest(BAD_SORT) from None
        query = " ".join(params.get("q", "").split()) or None
        tag = normalise(params.get("tag", "").strip().lstrip("#")) or None
        return cls(query=query, tag=tag, sort=sort, page=int(page_text))

    def url_parameters(self, page: int) -> dict[str, str]:
        """The query string of another page of the same grid: empty parameters left out."""
        parameters = {"q": self.query, "tag": self.tag}
        kept = {name: value for name, value in parameters.items() if value}
        if self.sort is not Sort.NEWEST:
            kept["sort"] = self.sort.value
        if page != 1:
            kept["page"] = str(page)
        return kept


class Gallery:
    """The gallery's request handlers over the library service."""

    def __init__(self, library: LibraryService, *, per_page: int) -> None:
        self._library = library
        self._per_page = per_page
        self._templates = Environment(
            loader=PackageLoader("bot.core", "gallery_templates"),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters["day"] = _day
        static = resources.files("bot.core") / "gallery_templates" / "static"
        self._static = {name: (static / name).read_bytes() for name in _STATIC_FILES}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/gallery/static/{name}", self.static),
            web.get("/gallery/{guild_id}", self.grid),
            web.get("/gallery/{guild_id}/entries/{entry_id}", self.entry),
            web.get("/gallery/{guild_id}/images/{entry_id}", self.image),
            web.get("/gallery/{guild_id}/thumbnails/{entry_id}", self.thumbnail),
            # Any other address under /gallery: the same 404 page, not the router's text.
            web.get("/gallery{tail:(/.*)?}", self.not_found),
        ]

    # ------------------------------------------------------------------------- pages

    async def grid(self, request: web.Request) -> web.Response:
        guild_id = parse_id(request.match_info["guild_id"])
        settings = None if guild_id is None else await self._library.web_settings(guild_id)
        if guild_id is None or settings is None:
            return self._not_found_page()
        try:
            wanted = GridQuery.from_url(request.query)
        except InvalidRequest as refusal:
            return self._error_page(settings, refusal.user_message, status=400)
        where = EntryFilter(query=wanted.query, tag=wanted.tag)
        problem: str | None = None
        try:
            entries, total = await self._library.web_page(
                guild_id,
                where,
                wanted.sort,
                offset=(wanted.page - 1) * self._per_page,
                limit=self._per_page,
            )
        except InvalidRequest as refusal:  # a search with no word in it
            entries, total, problem = [], 0, refusal.user_message
        pages = max(1, math.ceil(total / self._per_page))
        if wanted.page > pages:
            return self._not_found_page()
        base = request.rel_url.with_query(None)

        def page_url(page: int) -> str:
            return str(base.with_query(wanted.url_parameters(page)))

        return self._page(
            "grid.html",
            status=200 if problem is None else 400,
            settings=settings,
            guild_id=guild_id,
            wanted=wanted,
            sorts=_SORT_LABELS,
            entries=entries,
            total=total,
            problem=problem,
            pages=pages,
            previous_url=page_url(wanted.page - 1) if wanted.page > 1 else None,
            next_url=page_url(wanted.page + 1) if wanted.page < pages else None,
        )

    async def entry(self, request: web.Request) -> web.Response:
        found = await self._visible_entry(request)
        if found is None:
            return self._not_found_page()
        settings, entry = found
        return self._page(
            "entry.html", settings=settings, guild_id=entry.guild_id, entry=entry, status=200
        )

    async def not_found(self, _: web.Request) -> web.Response:
        return self._not_found_page()

    # ------------------------------------------------------------------------- files

    async def image(self, request: web.Request) -> web.StreamResponse:
        return await self._entry_file(request, lambda entry: entry.image_name)

    async def thumbnail(self, request: web.Request) -> web.StreamResponse:
        return await self._entry_file(request, lambda entry: entry.thumbnail_name)

    async def _entry_file(
        self, request: web.Request, name_of: Callable[[LibraryEntry], str]
    ) -> web.StreamResponse:
        found = await self._visible_entry(request)
        if found is None:
            return self._not_found_page()
        path = self._library.files.path(name_of(found[1]))
        content_type = _IMAGE_TYPES.get(path.suffix.lower(), "application/octet-stream")
        headers = {**SECURITY_HEADERS, "Content-Type": content_type, "Cache-Control": REVALIDATE}
        # A file gone from disk is answered 404 by FileResponse itself.
        return web.FileResponse(path, headers=headers)

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC_FILES:
            return self._not_found_page()
        headers = {**SECURITY_HEADERS, "Cache-Control": STATIC_CACHE}
        return web.Response(
            body=self._static[name], content_type=_STATIC_FILES[name], headers=headers
        )

    # ------------------------------------------------------------------------- helpers

    async def _visible_entry(
        self, request: web.Request
    ) -> tuple[LibrarySettings, LibraryEntry] | None:
        """The open gallery's settings and the entry of the URL, while it is visible."""
        guild_id = parse_id(request.match_info["guild_id"])
        entry_id = parse_id(request.match_info["entry_id"])
        if guild_id is None or entry_id is None:
            return None
        settings = await self._library.web_settings(guild_id)
        if settings is None:
            return None
        entry = await self._library.web_entry(guild_id, entry_id)
        return None if entry is None else (settings, entry)

    def _not_found_page(self) -> web.Response:
        """The one page of every address that shows nothing: an unknown guild, a closed
        gallery and a removed entry cannot be told apart."""
        return self._page("not_found.html", status=404, message=_NOT_FOUND)

    def _error_page(self, settings: LibrarySettings, message: str, *, status: int) -> web.Response:
        return self._page("error.html", status=status, settings=settings, message=message)

    def _page(self, template: str, *, status: int, **context: object) -> web.Response:
        html = self._templates.get_template(template).render(**context)
        headers = {**SECURITY_HEADERS, "Cache-Control": REVALIDATE}
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=headers
        )


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def add_gallery_routes(app: web.Application, library: LibraryService, *, per_page: int) -> None:
    """Serve ``/gallery/{guild_id}`` (the grid), ``…/entries/{id}`` (an entry's page),
    ``…/images/{id}`` and ``…/thumbnails/{id}`` (its files) and ``/gallery/static/…``."""
    app.router.add_routes(Gallery(library, per_page=per_page).routes())
