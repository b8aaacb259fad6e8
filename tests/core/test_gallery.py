"""The web gallery over HTTP: the real listener app with the gallery's routes, a real library
service on a job bench (fake Replicate, real SQLite, real image files), read with a client."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image as PillowImage

from bot.core.blocklist import BlocklistService
from bot.core.domain import Member
from bot.core.gallery import SECURITY_HEADERS, add_gallery_routes
from bot.core.jobs import JobService
from bot.core.library import LibraryService
from bot.core.library_files import LibraryFiles
from bot.core.listener import create_listener_app
from bot.core.storage.blocklist import BlocklistRepository
from bot.core.storage.library import LibraryRepository
from bot.core.storage.library_protocol import LibraryEntry
from tests.core.job_bench import Bench
from tests.factories import A_MEMBER, GUILD_ID, a_request, a_target

ADMIN_ID = 42
OTHER_GUILD = GUILD_ID + 100
OTHER_SERVER_MEMBER = Member(guild_id=OTHER_GUILD, user_id=A_MEMBER.user_id)
PER_PAGE = 2


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    library: LibraryService
    jobs: JobService
    bench: Bench

    async def shared(
        self,
        title: str,
        prompt: str = "a lighthouse at dusk",
        *,
        tags: str = "",
        member: Member = A_MEMBER,
        author_name: str = "Ada",
    ) -> LibraryEntry:
        """An entry shared the way members share: a delivered job, then Share."""
        target = a_target(guild_id=member.guild_id, user_id=member.user_id)
        job = (await self.jobs.submit(a_request(prompt), target, member)).jobs[0]
        await self.bench.ended(job.id)
        return await self.library.share(
            member, job.id, author_name=author_name, title=title, tags=tags
        )

    async def open_gallery(self, guild_id: int = GUILD_ID, name: str = "Ada's Studio") -> None:
        await self.library.set_web_gallery(guild_id, ADMIN_ID, True, guild_name=name)

    async def text(self, path: str, status: int = 200) -> str:
        response = await self.client.get(path)
        body = await response.text()
        assert response.status == status, body
        return body


@pytest.fixture
async def site(
    bench: Bench, connection: aiosqlite.Connection, tmp_path: Path
) -> AsyncIterator[Site]:
    blocklist = BlocklistService(repository=BlocklistRepository(connection))
    jobs = await bench.service(blocklist=blocklist)
    await jobs.start()
    library = LibraryService(
        repository=LibraryRepository(connection),
        jobs=jobs,
        blocklist=blocklist,
        files=LibraryFiles(tmp_path / "images" / "library"),
        web_gallery_enabled=True,
    )
    # The listener app the runner builds, with the gallery added as the runner adds it.
    app = create_listener_app(jobs, max_body_bytes=64 * 1024)
    add_gallery_routes(app, library, per_page=PER_PAGE)
    async with TestClient(TestServer(app)) as client:
        yield Site(client, library, jobs, bench)


def titles_shown(html: str) -> list[str]:
    return re.findall(r'<span class="title">(.*?)</span>', html)


def gallery_urls(entry: LibraryEntry) -> list[str]:
    base = f"/gallery/{entry.guild_id}"
    return [
        base,
        f"{base}/entries/{entry.id}",
        f"{base}/images/{entry.id}",
        f"{base}/thumbnails/{entry.id}",
    ]


async def test_a_server_that_did_not_opt_in_looks_like_an_unknown_one(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    unknown = await site.text(f"/gallery/{GUILD_ID + 7}", status=404)

    for url in gallery_urls(entry):
        assert await site.text(url, status=404) == unknown
    assert "Lighthouse" not in unknown


async def test_a_server_closed_again_disappears(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()
    await site.library.set_web_gallery(GUILD_ID, ADMIN_ID, False, guild_name="Ada's Studio")

    for url in gallery_urls(entry):
        assert (await site.client.get(url)).status == 404


async def test_the_gallery_is_closed_while_the_operator_has_not_enabled_it(
    site: Site, connection: aiosqlite.Connection
) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()
    closed_by_operator = LibraryService(
        repository=LibraryRepository(connection),
        jobs=site.jobs,
        blocklist=BlocklistService(repository=BlocklistRepository(connection)),
        files=site.library.files,
        web_gallery_enabled=False,
    )
    app = create_listener_app(site.jobs, max_body_bytes=1024)
    add_gallery_routes(app, closed_by_operator, per_page=PER_PAGE)

    async with TestClient(TestServer(app)) as client:
        for url in gallery_urls(entry):
            assert (await client.get(url)).status == 404


async def test_the_grid_lists_the_servers_entries_newest_first_and_no_others(site: Site) -> None:
    await site.shared("Lighthouse")
    await site.shared("Harbour", "a harbour at noon")
    await site.shared("Elsewhere", "a desert", member=OTHER_SERVER_MEMBER)
    await site.open_gallery()
    await site.open_gallery(OTHER_GUILD, "Another server")

    html = await site.text(f"/gallery/{GUILD_ID}")

    assert titles_shown(html) == ["Harbour", "Lighthouse"]
    assert "<title>Ada&#39;s Studio · prompt gallery</title>" in html


async def test_search_ranks_a_title_match_first(site: Site) -> None:
    await site.shared("Harbour", "a harbour with a lighthouse")
    await site.shared("Lighthouse", "a tall tower at dusk")
    await site.shared("Desert", "dunes")
    await site.open_gallery()

    html = await site.text(f"/gallery/{GUILD_ID}?q=lighthouse")

    assert titles_shown(html) == ["Lighthouse", "Harbour"]


@pytest.mark.parametrize("query", ['"', "!!!", "*", "()"])
async def test_a_search_without_words_shows_how_to_search(site: Site, query: str) -> None:
    await site.shared("Lighthouse")
    await site.open_gallery()

    response = await site.client.get(f"/gallery/{GUILD_ID}", params={"q": query})

    assert response.status == 400
    assert "Type a word or two to search for." in await response.text()


@pytest.mark.parametrize("query", ["NEAR(", 'light" OR', "title:lighthouse AND -", "lig*h"])
async def test_fts_syntax_in_a_search_is_read_as_words(site: Site, query: str) -> None:
    await site.shared("Lighthouse")
    await site.open_gallery()

    response = await site.client.get(f"/gallery/{GUILD_ID}", params={"q": query})

    assert response.status == 200
    assert "No shared prompts match that." in await response.text()


async def test_a_tag_filters_the_grid(site: Site) -> None:
    await site.shared("Lighthouse", tags="sea")
    await site.shared("Desert", "dunes", tags="sand")
    await site.open_gallery()

    html = await site.text(f"/gallery/{GUILD_ID}?tag=%23Sea")

    assert titles_shown(html) == ["Lighthouse"]


async def test_sorting_by_likes_puts_the_liked_entry_first(site: Site) -> None:
    liked = await site.shared("Lighthouse")
    await site.shared("Harbour", "a harbour")
    await site.library.like(A_MEMBER, liked.id)
    await site.open_gallery()

    html = await site.text(f"/gallery/{GUILD_ID}?sort=liked")

    assert titles_shown(html) == ["Lighthouse", "Harbour"]


async def test_paging_links_keep_the_search_and_sort(site: Site) -> None:
    for name in ("One", "Two", "Three"):
        await site.shared(f"Tower {name}", f"a tower number {name}")
    await site.open_gallery()

    first = await site.text(f"/gallery/{GUILD_ID}?q=tower&sort=used")
    [next_link] = re.findall(r'rel="next" href="([^"]+)"', first)
    second = await site.text(next_link.replace("&amp;", "&"))

    assert next_link == f"/gallery/{GUILD_ID}?q=tower&amp;sort=used&amp;page=2"
    assert len(titles_shown(first)) == PER_PAGE
    assert len(titles_shown(second)) == 1
    assert not set(titles_shown(first)) & set(titles_shown(second))
    assert 'rel="prev"' in second


@pytest.mark.parametrize(
    ("query", "status"),
    [("page=0", 400), ("page=two", 400), ("page=-1", 400), ("page=99999999999", 400),
     ("sort=oldest", 400), ("page=3", 404)],
)  # fmt: skip
async def test_a_bad_page_or_sort_is_refused_without_failing(
    site: Site, query: str, status: int
) -> None:
    await site.shared("Lighthouse")
    await site.open_gallery()

    assert (await site.client.get(f"/gallery/{GUILD_ID}?{query}")).status == status


@pytest.mark.parametrize(
    "path",
    ["/gallery/abc", "/gallery/-1", "/gallery/0", f"/gallery/{2**64}", "/gallery/\uff11\uff12",
     f"/gallery/{GUILD_ID}/entries/x", f"/gallery/{GUILD_ID}/entries/{2**70}",
     f"/gallery/{GUILD_ID}/images/1.5", f"/gallery/{GUILD_ID}/nowhere", "/gallery/static/x.css"],
)  # fmt: skip
async def test_an_address_that_is_not_one_answers_the_not_found_page(site: Site, path: str) -> None:
    await site.shared("Lighthouse")
    await site.open_gallery()
    unknown = await site.text(f"/gallery/{GUILD_ID + 7}", status=404)

    assert await site.text(path, status=404) == unknown


async def test_a_hidden_entry_and_its_files_disappear_at_once(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()
    for url in gallery_urls(entry)[1:]:
        assert (await site.client.get(url)).status == 200

    await site.library.set_hidden(GUILD_ID, ADMIN_ID, entry.id, True)

    assert titles_shown(await site.text(f"/gallery/{GUILD_ID}")) == []
    for url in gallery_urls(entry)[1:]:
        assert (await site.client.get(url)).status == 404


async def test_a_deleted_entry_and_its_files_disappear(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()

    await site.library.delete(GUILD_ID, ADMIN_ID, entry.id)

    for url in gallery_urls(entry)[1:]:
        assert (await site.client.get(url)).status == 404


async def test_everything_members_wrote_is_escaped(site: Site) -> None:
    entry = await site.shared(
        "<script>alert(1)</script>",
        'a "quoted" <img src=x onerror=alert(2)> prompt',
        author_name="<b>Ada</b>",
    )
    await site.open_gallery(name="<i>Studio</i>")

    for html in (
        await site.text(f"/gallery/{GUILD_ID}"),
        await site.text(f"/gallery/{GUILD_ID}/entries/{entry.id}"),
    ):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<b>Ada" not in html
        assert "&lt;b&gt;Ada&lt;/b&gt;" in html
        assert "<i>Studio" not in html
    entry_page = await site.text(f"/gallery/{GUILD_ID}/entries/{entry.id}")
    assert "<img src=x" not in entry_page
    assert "a &#34;quoted&#34; &lt;img src=x onerror=alert(2)&gt; prompt" in entry_page


async def test_the_entry_page_shows_the_recipe_and_a_copy_button(site: Site) -> None:
    entry = await site.shared("Lighthouse", "a lighthouse at dusk", tags="sea coast")
    await site.open_gallery()

    html = await site.text(f"/gallery/{GUILD_ID}/entries/{entry.id}")

    assert '<pre id="prompt">a lighthouse at dusk</pre>' in html
    assert 'data-copy="prompt"' in html
    assert '<script src="/gallery/static/gallery.js" defer></script>' in html
    for shown in (entry.recipe.tier.value, entry.recipe.aspect_ratio.value, "by Ada", "#sea"):
        assert shown in html
    assert f'alt="Lighthouse" width="{entry.width}" height="{entry.height}"' in html


async def test_every_response_sends_the_security_headers(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()
    urls = [
        *gallery_urls(entry),
        f"/gallery/{GUILD_ID}?q=%22",
        f"/gallery/{GUILD_ID + 7}",
        "/gallery/static/gallery.css",
        "/gallery/static/gallery.js",
    ]

    for url in urls:
        response = await site.client.get(url)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (url, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp


async def test_images_are_revalidated_so_hiding_takes_effect(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()

    image = await site.client.get(f"/gallery/{GUILD_ID}/images/{entry.id}")
    again = await site.client.get(
        f"/gallery/{GUILD_ID}/images/{entry.id}", headers={"If-None-Match": image.headers["ETag"]}
    )

    assert image.headers["Cache-Control"] == "public, no-cache"
    assert image.content_type == "image/jpeg"
    assert again.status == 304


async def test_a_thumbnail_is_a_jpeg_made_once(site: Site) -> None:
    entry = await site.shared("Lighthouse")
    await site.open_gallery()
    thumbnail = site.library.files.path(entry.thumbnail_name)
    made = thumbnail.stat().st_mtime_ns

    for _ in range(2):
        response = await site.client.get(f"/gallery/{GUILD_ID}/thumbnails/{entry.id}")
        assert response.content_type == "image/jpeg"
        with PillowImage.open(io.BytesIO(await response.read())) as picture:
            assert picture.format == "JPEG"

    assert thumbnail.stat().st_mtime_ns == made


async def test_the_stylesheet_lays_out_a_responsive_grid(site: Site) -> None:
    response = await site.client.get("/gallery/static/gallery.css")

    assert response.content_type == "text/css"
    assert "repeat(auto-fill, minmax(" in await response.text()
