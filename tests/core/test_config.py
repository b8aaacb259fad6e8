from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import ReplicateProviderSettings, Settings
from bot.core.config_loading import ConfigInvalid, load_configuration, load_settings, read_secrets
from bot.core.domain import Tier


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    return caught.value.problems


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
    assert problems_of(path) == [
        f"{path}, table [webhook], key listen_port: must be at most 65535 (it is 70000)",
        f'{path}, table [webhook]: unknown key "colour" (known keys: listen_host, listen_port, '
        "public_url, max_body_bytes)",
        f'{path}, table [tiers.ultra], key providers: names provider "nobody", which is not '
        "configured",
    ]


def test_tier_naming_an_unknown_provider_is_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[tiers.ultra]\nproviders = ["nobody", "nobody"]\n')
    assert problems_of(path) == [
        f'{path}, table [tiers.ultra], key providers: names provider "nobody", which is not '
        "configured"
    ]


def test_a_misspelt_provider_in_a_tier_suggests_the_configured_one(tmp_path: Path) -> None:
    path = write(tmp_path, '[providers.kkiai]\n[tiers.fast]\nproviders = ["kkiia"]\n')
    assert problems_of(path) == [
        f'{path}, table [tiers.fast], key providers: names provider "kkiia", which is not '
        'configured — did you mean "kkiai"?'
    ]


def test_one_run_reports_file_tier_and_environment_problems_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [providers.replicate]
        [providers.kkiai]
        type = "replicat"
        [tiers.fast]
        providers = ["kkiia"]
        """,
    )
    with pytest.raises(ConfigInvalid) as caught:
        load_configuration(path, environ={})
    assert caught.value.problems == [
        f'{path}, table [providers.kkiai]: unknown type "replicat" — did you mean "replicate"? '
        "(known: replicate, aimlapi, apikley)",
        f'{path}, table [tiers.fast], key providers: names provider "kkiia", which is not '
        'configured — did you mean "kkiai"?',
        "environment variable DISCORD_TOKEN (the Discord bot token) is not set",
        'environment variable REPLICATE_API_TOKEN (the API key of provider "replicate") is not set',
    ]


def test_an_invalid_file_still_names_its_own_discord_token_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[discord]\ntoken_env = "IMAGINE_TOKEN"\n[queue]\nbogus = 1\n')
    with pytest.raises(ConfigInvalid) as caught:
        load_configuration(path, environ={"REPLICATE_API_TOKEN": "k"})
    assert caught.value.problems[1:] == [
        "environment variable IMAGINE_TOKEN (the Discord bot token) is not set"
    ]


def test_invalid_toml_is_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="not valid TOML"):
        load_settings(write(tmp_path, "[database\n"))


def test_missing_secrets_are_listed_together() -> None:
    _, problems = read_secrets(Settings(), environ={})
    assert problems == [
        "environment variable DISCORD_TOKEN (the Discord bot token) is not set",
        'environment variable REPLICATE_API_TOKEN (the API key of provider "replicate") is not set',
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
    assert problems == [
        "environment variable REPLICATE_WEBHOOK_SECRET (the webhook signing secret of provider "
        '"replicate") must start with whsec_'
    ]


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
