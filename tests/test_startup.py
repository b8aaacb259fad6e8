"""``imagine-bot run`` failing to start: one line saying what to do, exit status 1.

``run`` installs signal handlers, which only the main thread may do, so these tests call the
entry point from the main thread and serve the fake Discord from a thread of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import discord.http
import pytest
from aiohttp import web

from bot.cli import main
from tests.fakes.fake_discord import API_PREFIX, FakeDiscord, point_discord_py_at

T = TypeVar("T")
TOKEN = "MTIzNDU2Nzg5.bad-token.never-printed"


class Background:
    """An event loop in a thread, serving while the test's own thread runs the bot."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fakes", daemon=True)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def background() -> Iterator[Background]:
    background = Background()
    yield background
    background.close()


@pytest.fixture
def fake_discord(background: Background) -> Iterator[FakeDiscord]:
    fake = FakeDiscord()
    background.call(fake.start())
    try:
        with point_discord_py_at(fake):
            yield fake
    finally:
        background.call(fake.close())


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config for ``run`` that writes only under ``tmp_path`` and listens on a free port."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_key")
    monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
    return write_config(tmp_path, listen_port=0)


def write_config(tmp_path: Path, *, listen_port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[database]
path = {json.dumps(str(tmp_path / "bot.sqlite3"))}
[images]
dir = {json.dumps(str(tmp_path / "images"))}
[webhook]
listen_port = {listen_port}
""",
        encoding="utf-8",
    )
    return path


def run_fails(
    config: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> str:
    """Run the bot; assert it failed cleanly, without a traceback or the token; its line."""
    caplog.set_level(logging.DEBUG)
    status = main(["run", "--config", str(config)])
    output = capsys.readouterr()
    assert status == 1
    assert output.out == ""
    [line] = output.err.splitlines()
    assert "Traceback" not in output.err
    assert TOKEN not in output.err + caplog.text
    return line


def test_a_token_discord_refuses_is_one_line_naming_its_variable(
    config: Path,
    fake_discord: FakeDiscord,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert run_fails(config, capsys, caplog) == (
        "error: Discord refused the bot token in DISCORD_TOKEN: reset the token in the "
        "developer portal (Bot, Reset Token) and set DISCORD_TOKEN to the new one"
    )
    assert ("GET", f"{API_PREFIX}/users/@me") in fake_discord.requests


def test_a_callback_port_in_use_is_one_line_naming_it(
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = run_fails(write_config(tmp_path, listen_port=port), capsys, caplog)

    assert line == (
        f"error: cannot listen for callbacks on 127.0.0.1:{port} (Address already in use): "
        "stop what uses that port or set [webhook] listen_port (and listen_host) to one this "
        "machine can use"
    )


def test_discord_unreachable_is_one_line(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}{API_PREFIX}")

    line = run_fails(config, capsys, caplog)

    assert line.startswith(f"error: cannot reach Discord (Cannot connect to host 127.0.0.1:{port}")
    assert line.endswith(
        "): check this machine's network, proxy and firewall, and https://discordstatus.com"
    )


async def unavailable(request: web.Request) -> web.Response:
    return web.json_response({"message": "503: Service Unavailable", "code": 0}, status=503)


async def start_outage() -> web.AppRunner:
    """A Discord whose every answer is 503, as in an outage."""
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", unavailable)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def test_a_discord_outage_is_one_line(
    config: Path,
    background: Background,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = background.call(start_outage())
    port = outage.addresses[0][1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}{API_PREFIX}")
    try:
        line = run_fails(config, capsys, caplog)
    finally:
        background.call(outage.cleanup())

    assert line == (
        "error: cannot reach Discord (it answered 503): check this machine's network, proxy and "
        "firewall, and https://discordstatus.com"
    )


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (
            429,
            "error: Discord is rate limiting this machine (it answered 429, as Cloudflare does "
            "after too many invalid requests from one address): stop whatever else uses this "
            "address with a wrong token, wait up to an hour, and start again",
        ),
        (
            403,
            "error: Discord refused to log the bot in (it answered 403): check the token in "
            "DISCORD_TOKEN and https://discordstatus.com",
        ),
    ],
    ids=["banned", "denied"],
)
def test_discord_refusing_the_login_with_a_4xx_is_one_line(
    config: Path,
    fake_discord: FakeDiscord,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    status: int,
    line: str,
) -> None:
    fake_discord.block_like_cloudflare(status)

    assert run_fails(config, capsys, caplog) == line
    assert "Traceback" not in caplog.text
