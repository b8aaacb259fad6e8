from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main


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
    assert "DISCORD_TOKEN is not set" in errors
    assert "REPLICATE_API_TOKEN is not set" in errors


def test_check_config_reports_file_problems_before_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[jobs]\nmax_concurrent = 0\n", encoding="utf-8")
    assert main(["check-config", "--config", str(config)]) == 1
    assert "jobs.max_concurrent" in capsys.readouterr().err


def test_check_config_passes_and_never_prints_secrets(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-value")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_secret_value")
    assert main(["check-config"]) == 0
    output = capsys.readouterr()
    assert "configuration OK" in output.out
    assert "secret_value" not in output.out + output.err


def test_example_config_is_valid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "k")
    assert main(["check-config", "--config", str(example)]) == 0


def test_generate_with_an_unknown_provider_fails_clearly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "k")
    status = main(["generate", "a fox", "--out", str(tmp_path), "--provider", "nope"])
    assert status == 1
    assert "unknown provider 'nope'" in capsys.readouterr().err
