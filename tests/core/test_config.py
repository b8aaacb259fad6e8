from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import (
    ConfigInvalid,
    ReplicateProviderSettings,
    Settings,
    load_settings,
    read_secrets,
)
from bot.core.domain import Tier


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    replicate = settings.providers["replicate"]
    assert isinstance(replicate, ReplicateProviderSettings)
    assert replicate.is_official
    assert all(settings.tiers[tier].providers == ["replicate"] for tier in Tier)
    assert settings.webhook.public_url is None


def test_config_toml_in_working_directory_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[database]\npath = "elsewhere.sqlite3"\n')
    assert load_settings(None).database.path == Path("elsewhere.sqlite3")


def test_two_replicate_providers_work_side_by_side(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
            [providers.replicate]
            type = "replicate"
            [providers.kkiai]
            type = "replicate"
            base_url = "https://www.kkiai.com/replicate/v1"
            api_key_env = "KKIAI_API_KEY"
            [tiers.fast]
            providers = ["kkiai", "replicate"]
            """,
        )
    )
    official, proxy = settings.providers["replicate"], settings.providers["kkiai"]
    assert isinstance(official, ReplicateProviderSettings)
    assert isinstance(proxy, ReplicateProviderSettings)
    assert official.verifies_signatures
    assert not proxy.verifies_signatures
    assert settings.tiers[Tier.FAST].providers == ["kkiai", "replicate"]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [webhook]
        listen_port = 70000
        colour = "blue"
        [tiers.ultra]
        providers = ["nobody"]
        """,
    )
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    problems = "\n".join(caught.value.problems)
    assert "webhook.listen_port" in problems
    assert "webhook.colour" in problems
    assert len(caught.value.problems) == 2


def test_tier_naming_an_unknown_provider_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="unknown provider 'nobody'"):
        load_settings(write(tmp_path, '[tiers.ultra]\nproviders = ["nobody"]\n'))


def test_invalid_toml_is_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="not valid TOML"):
        load_settings(write(tmp_path, "[database\n"))


def test_missing_secrets_are_listed_together() -> None:
    _, problems = read_secrets(Settings(), environ={})
    assert problems == [
        "environment variable DISCORD_TOKEN is not set",
        "providers.replicate: environment variable REPLICATE_API_TOKEN is not set",
    ]


def test_generate_does_not_need_a_discord_token() -> None:
    secrets, problems = read_secrets(
        Settings(), environ={"REPLICATE_API_TOKEN": "r8_x"}, require_discord=False
    )
    assert problems == []
    assert secrets.provider_api_keys["replicate"].get_secret_value() == "r8_x"


def test_secrets_never_appear_in_reprs() -> None:
    secrets, _ = read_secrets(
        Settings(),
        environ={
            "DISCORD_TOKEN": "discord-secret-value",
            "REPLICATE_API_TOKEN": "r8_secret_value",
            "REPLICATE_WEBHOOK_SECRET": "whsec_c2VjcmV0",
        },
    )
    text = repr(secrets) + str(secrets)
    assert "discord-secret-value" not in text
    assert "r8_secret_value" not in text
    assert "c2VjcmV0" not in text


def test_webhook_secret_must_have_the_whsec_prefix() -> None:
    _, problems = read_secrets(
        Settings(),
        environ={"DISCORD_TOKEN": "t", "REPLICATE_API_TOKEN": "k", "REPLICATE_WEBHOOK_SECRET": "x"},
    )
    assert problems == ["providers.replicate: REPLICATE_WEBHOOK_SECRET must start with whsec_"]


def test_tiers_the_file_omits_use_every_provider_in_order(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
            [providers.kkiai]
            base_url = "https://www.kkiai.com/replicate/v1"
            [providers.official]
            [tiers.ultra]
            providers = ["official"]
            """,
        )
    )
    assert settings.tiers[Tier.FAST].providers == ["kkiai", "official"]
    assert settings.tiers[Tier.ULTRA].providers == ["official"]
