from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from PIL import Image as PillowImage

from bot.cli import main
from tests.fakes.fake_aiml import FakeAiml
from tests.fakes.fake_apikley import FakeApikley
from tests.fakes.fake_discord import running_fake_discord
from tests.fakes.fake_replicate import FakeReplicate

# View Channels, Send Messages, Embed Links and Attach Files (README, "Discord application").
INVITE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("DISCORD_TOKEN", "REPLICATE_API_TOKEN", "REPLICATE_WEBHOOK_SECRET"):
        monkeypatch.delenv(variable, raising=False)


def test_check_config_lists_every_problem_and_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["check-config"]) == 1
    errors = capsys.readouterr().err
    assert "2 configuration problem(s)" in errors
    assert "DISCORD_TOKEN (the Discord bot token) is not set" in errors
    assert 'REPLICATE_API_TOKEN (the API key of provider "replicate") is not set' in errors


def test_check_config_reports_file_and_environment_problems_together(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[queue]\nmax_running_per_guild = 0\n", encoding="utf-8")
    assert main(["check-config", "--config", str(config)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "3 configuration problem(s):",
        f"  - {config}, table [queue], key max_running_per_guild: must be at least 1 (it is 0)",
        "  - environment variable DISCORD_TOKEN (the Discord bot token) is not set",
        '  - environment variable REPLICATE_API_TOKEN (the API key of provider "replicate") is '
        "not set",
    ]


def test_check_config_passes_and_never_prints_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-value")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_secret_value")
    assert main(["check-config", "--offline"]) == 0
    output = capsys.readouterr()
    assert "configuration OK" in output.out
    assert "secret_value" not in output.out + output.err


def test_example_config_is_valid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "k")
    assert main(["check-config", "--offline", "--config", str(example)]) == 0


def test_example_provider_snippets_are_valid_once_uncommented(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    commented_setting = re.compile(r"^# (\[providers\.|[a-z_]+ = )")
    lines = [
        line[2:] if commented_setting.match(line) else line
        for line in example.read_text(encoding="utf-8").splitlines()
    ]
    (tmp_path / "full.toml").write_text("\n".join(lines), encoding="utf-8")
    for variable in ("DISCORD_TOKEN", "REPLICATE_API_TOKEN", "KKIAI_API_KEY"):
        monkeypatch.setenv(variable, "k")
    monkeypatch.setenv("AIMLAPI_API_KEY", "k")
    monkeypatch.setenv("APIKLEY_API_KEY", "k")

    assert main(["check-config", "--offline", "--config", str(tmp_path / "full.toml")]) == 0
    printed = capsys.readouterr().out
    for provider in ("replicate", "kkiai", "aiml", "apikley"):
        assert f"provider {provider}:" in printed


def test_generate_with_an_unknown_provider_fails_clearly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "k")
    status = main(["generate", "a fox", "--out", str(tmp_path), "--provider", "nope"])
    assert status == 1
    assert "unknown provider 'nope'" in capsys.readouterr().err


async def run_cli(*arguments: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The installed entry point in a child process, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *arguments,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def provider_config(
    tmp_path: Path, base_url: str, *, name: str, provider_type: str = "replicate"
) -> Path:
    # Apikley's documented schedule would poll the instant fake first after 2.5 s.
    apikley_polls = "poll_intervals_seconds = [0.1, 0.2, 0.5]" if provider_type == "apikley" else ""
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[providers.{name}]
type = "{provider_type}"
base_url = "{base_url}"
api_key_env = "FAKE_PROVIDER_KEY"
{apikley_polls}

[jobs]
poll_initial_seconds = 0.1
poll_max_seconds = 0.5
""",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize("mode", ["official", "proxy"])
async def test_generate_writes_a_real_image_from_replicate(tmp_path: Path, mode: str) -> None:
    async with FakeReplicate(mode=mode) as fake:  # type: ignore[arg-type]
        config = provider_config(tmp_path, fake.base_url, name=mode)
        code, stdout, stderr = await run_cli(
            "generate",
            "a lighthouse at dusk",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
            "--aspect-ratio",
            "9:16",
            "--output-format",
            "png",
            env={"FAKE_PROVIDER_KEY": fake.token},
        )

    assert code == 0, stderr
    [printed] = stdout.splitlines()
    with PillowImage.open(printed) as image:
        assert (image.format, image.size) == ("PNG", (768, 1408))
    assert fake.token not in stdout + stderr


async def test_generate_reports_a_safety_block_and_writes_nothing(tmp_path: Path) -> None:
    async with FakeReplicate() as fake:
        fake.fail_next()
        config = provider_config(tmp_path, fake.base_url, name="replicate")
        code, stdout, stderr = await run_cli(
            "generate",
            "something flagged",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
            env={"FAKE_PROVIDER_KEY": fake.token},
        )

    assert code == 1
    assert stdout == ""
    assert "safety" in stderr.lower()
    assert not (tmp_path / "out").exists()


async def test_check_config_verifies_every_providers_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fake_replicate: FakeReplicate,
    fake_aiml: FakeAiml,
    fake_apikley: FakeApikley,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[providers.replicate]
base_url = "{fake_replicate.base_url}"
[providers.aiml]
type = "aimlapi"
base_url = "{fake_aiml.base_url}"
[providers.apikley]
type = "apikley"
base_url = "{fake_apikley.base_url}"
""",
        encoding="utf-8",
    )
    monkeypatch.setenv("REPLICATE_API_TOKEN", fake_replicate.token)
    monkeypatch.setenv("AIMLAPI_API_KEY", fake_aiml.token)
    monkeypatch.setenv("APIKLEY_API_KEY", "revoked")

    async with running_fake_discord() as fake_discord:
        monkeypatch.setenv("DISCORD_TOKEN", fake_discord.token)
        code = await check_config_in_a_thread(config)

    stdout = capsys.readouterr().out
    assert code == 1
    assert "key replicate: key accepted" in stdout
    assert "key aiml: key accepted" in stdout
    assert "key apikley: FAILED" in stdout
    assert fake_aiml.generation_count == 0
    assert (fake_replicate.create_count, fake_apikley.create_count) == (0, 0)


@pytest.fixture
def replicate_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_replicate: FakeReplicate
) -> Path:
    """A config whose one provider is the fake Replicate, its key in the environment."""
    monkeypatch.setenv("FAKE_PROVIDER_KEY", fake_replicate.token)
    return provider_config(tmp_path, fake_replicate.base_url, name="replicate")


async def check_config_in_a_thread(config: Path) -> int:
    """``check-config`` in process, so that discord.py goes to the fake Discord; in a thread,
    so that the fakes keep serving on this test's event loop meanwhile."""
    return await asyncio.to_thread(main, ["check-config", "--config", str(config)])


async def test_check_config_accepts_the_discord_token_and_prints_the_invite_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, replicate_config: Path
) -> None:

    async with running_fake_discord() as fake_discord:
        monkeypatch.setenv("DISCORD_TOKEN", fake_discord.token)
        code = await check_config_in_a_thread(replicate_config)

    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert "  discord: token accepted (bot fake-bot)" in printed
    assert (
        f"  invite: https://discord.com/oauth2/authorize?client_id={fake_discord.application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    ) in printed
    assert {method for method, _ in fake_discord.requests} == {"GET"}  # it creates nothing


async def test_check_config_fails_when_discord_refuses_the_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, replicate_config: Path
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "revoked-bot-token")

    async with running_fake_discord():
        code = await check_config_in_a_thread(replicate_config)

    output = capsys.readouterr()
    assert code == 1
    assert (
        "  discord: FAILED: Discord refused the bot token in DISCORD_TOKEN: reset the token in "
        "the developer portal (Bot, Reset Token) and set DISCORD_TOKEN to the new one"
    ) in output.out.splitlines()
    assert "revoked-bot-token" not in output.out + output.err


async def test_check_config_reports_a_cloudflare_ban_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, replicate_config: Path
) -> None:
    async with running_fake_discord() as fake_discord:
        fake_discord.block_like_cloudflare()
        monkeypatch.setenv("DISCORD_TOKEN", fake_discord.token)
        code = await check_config_in_a_thread(replicate_config)

    output = capsys.readouterr()
    assert code == 1
    assert (
        "  discord: FAILED: Discord is rate limiting this machine (it answered 429, as "
        "Cloudflare does after too many invalid requests from one address): stop whatever else "
        "uses this address with a wrong token, wait up to an hour, and start again"
    ) in output.out.splitlines()
    assert "Traceback" not in output.out + output.err


async def test_generate_writes_several_images_from_apikley(
    tmp_path: Path, fake_apikley: FakeApikley
) -> None:
    config = provider_config(
        tmp_path, fake_apikley.base_url, name="apikley", provider_type="apikley"
    )

    code, stdout, stderr = await run_cli(
        "generate",
        "a lighthouse at dusk",
        "--config",
        str(config),
        "--out",
        str(tmp_path / "out"),
        "--count",
        "2",
        "--negative-prompt",
        "fog",
        env={"FAKE_PROVIDER_KEY": fake_apikley.token},
    )

    assert code == 0, stderr
    printed = stdout.splitlines()
    assert len(printed) == 2
    for path in printed:
        with PillowImage.open(path) as image:
            assert image.format == "PNG"
    [task] = fake_apikley.tasks.values()
    assert (task.input["num_images"], task.input["negative_prompt"]) == ("2", "fog")
