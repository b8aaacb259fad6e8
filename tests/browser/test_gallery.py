"""The web gallery in a real browser: the whole bot (fake Discord, fake Replicate) makes images
with /imagine, its member shares them, an admin opens the server's gallery, and headless
Chromium loads the grid, searches, opens an entry, copies its prompt and takes a screenshot."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from PIL import Image as PillowImage
from PIL import ImageStat
from playwright.async_api import BrowserContext, ConsoleMessage, Page

from bot.core.domain import Member
from tests.e2e.conftest import BotRunner, eventually

ADMIN_ID = 7
SHARED = [
    ("Lighthouse at dusk", "a lighthouse at dusk, oil painting", "sea coast"),
    ("Harbour in the rain", "a small harbour in the rain, watercolour", "sea rain"),
    ("Desert caravan", "a caravan crossing dunes at noon", "sand"),
]


@dataclass
class Gallery:
    url: str
    page: Page
    # What the browser's console reported: a script or style the CSP refused shows up here.
    console_errors: list[str]


@pytest.fixture
async def gallery(runner: BotRunner, browser: BrowserContext) -> AsyncIterator[Gallery]:
    async with runner.run(gallery={"enabled": True}) as running:
        discord = running.discord
        member = Member(guild_id=discord.guild_id, user_id=discord.user_id)
        for _, prompt, _ in SHARED:
            await running.command("imagine", {"prompt": prompt})
        await running.channel_posts(count=len(SHARED))
        # The post reaches Discord just before the bot records the job as delivered.
        await eventually(lambda: running.job_states() == ["delivered"] * len(SHARED))
        library = running.application.library
        jobs = {job.request.prompt: job for job in await library.shareable(member)}
        for title, prompt, tags in SHARED:
            await library.share(member, jobs[prompt].id, author_name="Ada", title=title, tags=tags)
        await library.set_web_gallery(discord.guild_id, ADMIN_ID, True, guild_name="Ada's Studio")
        page = await browser.new_page()
        errors: list[str] = []

        def record(message: ConsoleMessage) -> None:
            if message.type == "error":
                errors.append(message.text)

        page.on("console", record)
        port = running.application.listener_port
        yield Gallery(f"http://127.0.0.1:{port}/gallery/{discord.guild_id}", page, errors)


async def card_titles(page: Page) -> list[str]:
    return await page.locator(".card .title").all_inner_texts()


async def test_the_grid_shows_every_shared_image_newest_first(gallery: Gallery) -> None:
    await gallery.page.goto(gallery.url)

    assert await gallery.page.title() == "Ada's Studio · prompt gallery"
    assert await card_titles(gallery.page) == [title for title, _, _ in reversed(SHARED)]
    loaded = await gallery.page.eval_on_selector_all(
        ".card img", "images => images.map(image => image.complete && image.naturalWidth > 0)"
    )
    assert loaded == [True] * len(SHARED)
    layout = await gallery.page.eval_on_selector(".grid", "grid => getComputedStyle(grid).display")
    assert layout == "grid"  # the stylesheet loaded under the page's own CSP
    assert gallery.console_errors == []


async def test_searching_from_the_form_shows_the_matches(gallery: Gallery) -> None:
    await gallery.page.goto(gallery.url)

    await gallery.page.fill("#q", "sea")
    await gallery.page.click(".search button[type=submit]")
    await gallery.page.wait_for_url("**q=sea**")

    assert sorted(await card_titles(gallery.page)) == ["Harbour in the rain", "Lighthouse at dusk"]
    assert await gallery.page.input_value("#q") == "sea"


async def test_an_entry_page_shows_the_prompt_and_copies_it(gallery: Gallery) -> None:
    await gallery.page.goto(gallery.url)

    await gallery.page.click("text=Lighthouse at dusk")
    await gallery.page.wait_for_url("**/entries/**")
    await gallery.page.click("button.copy")
    await gallery.page.wait_for_selector("text=Copied")

    prompt = "a lighthouse at dusk, oil painting"
    assert await gallery.page.inner_text("#prompt") == prompt
    assert await gallery.page.evaluate("navigator.clipboard.readText()") == prompt
    assert await gallery.page.locator("figure img").evaluate("image => image.naturalWidth") > 0
    assert gallery.console_errors == []


async def test_a_screenshot_of_the_gallery_is_not_blank(gallery: Gallery) -> None:
    await gallery.page.goto(gallery.url)

    shot = await gallery.page.screenshot(full_page=True)

    with PillowImage.open(io.BytesIO(shot)) as picture:
        rgb = picture.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20)
        spread = ImageStat.Stat(rgb).stddev
    assert colours is None or len(colours) > 10
    assert max(spread) > 10
