"""Fixtures for tests in a real browser: Debian's Chromium driven by Playwright, and the whole
bot from the end-to-end tests' fixtures serving what the browser loads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, async_playwright

from tests.e2e.conftest import fake_discord, runner  # noqa: F401 (fixtures used here)

# Debian's package (`.ci/run` installs it), not a browser Playwright downloads: the tests run
# on a closed network, and CI tests the browser its users' distribution ships.
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet: without the background-networking flags Chromium keeps calling Google's
# services (updates, sync, safe browsing), which on a closed network is only noise and delay.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A common desktop window.
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; a missing one fails the tests (never skips them)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium "
            "(.ci/run installs it).",
            pytrace=False,
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A fresh Chromium profile that may use the clipboard (for copy-prompt)."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
            permissions=["clipboard-read", "clipboard-write"],
        )
        try:
            yield context
        finally:
            await context.close()
