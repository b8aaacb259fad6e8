"""Reading the configuration: the TOML file into settings, the environment into secrets.

Every problem of both is collected before anything is reported (ConfigInvalid), so one
``check-config`` run shows an operator everything there is to fix.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr, TypeAdapter, ValidationError

from bot.core.config import (
    DEFAULT_CONFIG_PATH,
    DiscordSettings,
    ProviderSettings,
    Secrets,
    Settings,
    official_replicate,
)
from bot.core.config_problems import describe_errors, unknown_tier_providers


class ConfigInvalid(Exception):
    """Raised with every problem found, so an operator fixes them all in one go."""

    def __init__(self, problems: list[str]) -> None:
        # A problem found both in the file and by a model is told once.
        problems = list(dict.fromkeys(problems))
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(path: Path | None) -> Settings:
    """Read ``path`` (or ``config.toml`` if present, else defaults) into validated settings;
    ConfigInvalid lists every problem in the file."""
    source, raw = _read(path)
    return _validate(raw, source)


def load_configuration(
    path: Path | None, environ: Mapping[str, str] | None = None, *, require_discord: bool = True
) -> tuple[Settings, Secrets]:
    """The settings and the secrets they name. ConfigInvalid lists every problem of the file
    and of the environment together, so one ``check-config`` shows all there is to fix."""
    source, raw = _read(path)
    try:
        settings = _validate(raw, source)
    except ConfigInvalid as exc:
        unset = _unset_variables(raw, environ, require_discord=require_discord)
        raise ConfigInvalid(exc.problems + unset) from exc
    secrets, problems = read_secrets(settings, environ, require_discord=require_discord)
    if problems:
        raise ConfigInvalid(problems)
    return settings, secrets


def _read(path: Path | None) -> tuple[str, dict[str, object]]:
    """The file's name, for problems to name it, and its contents."""
    if path is None:
        path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    if path is None:
        return "default settings", {}
    try:
        return str(path), tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigInvalid([f"cannot read {path}: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigInvalid([f"{path} is not valid TOML: {exc}"]) from exc


def _validate(raw: dict[str, object], source: str) -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        # Settings checks tier providers only once every field is valid, so they are worked
        # out from the file; the model's own finding, at the root, then says the same again.
        providers = raw.get("providers", official_replicate())
        tiers = (
            unknown_tier_providers(raw, providers, source) if isinstance(providers, dict) else []
        )
        errors = [error for error in exc.errors() if error["loc"] or not tiers]
        raise ConfigInvalid(describe_errors(errors, Settings, source) + tiers) from exc


def read_secrets(
    settings: Settings, environ: Mapping[str, str] | None = None, *, require_discord: bool = True
) -> tuple[Secrets, list[str]]:
    """Resolve every secret the settings name; return them with a list of what is missing."""
    return _resolve_secrets(
        settings.discord.token_env, settings.providers, environ, require_discord=require_discord
    )


_PROVIDER: TypeAdapter[ProviderSettings] = TypeAdapter(ProviderSettings)


def _unset_variables(
    raw: Mapping[str, object], environ: Mapping[str, str] | None, *, require_discord: bool
) -> list[str]:
    """The secrets missing for a file that is not valid as a whole. Each provider table is
    validated on its own, so one bad provider does not hide the others' missing keys."""
    discord = raw.get("discord")
    token_env = discord.get("token_env") if isinstance(discord, dict) else None
    if not isinstance(token_env, str):
        token_env = DiscordSettings().token_env
    tables = raw.get("providers", {})
    providers = official_replicate() if "providers" not in raw else {}
    for name, table in tables.items() if isinstance(tables, dict) else ():
        # A table that is invalid on its own is among the file's problems already.
        with contextlib.suppress(ValidationError):
            providers[name] = _PROVIDER.validate_python(table)
    _, problems = _resolve_secrets(token_env, providers, environ, require_discord=require_discord)
    return problems


def _resolve_secrets(
    token_env: str,
    providers: Mapping[str, ProviderSettings],
    environ: Mapping[str, str] | None,
    *,
    require_discord: bool,
) -> tuple[Secrets, list[str]]:
    env = os.environ if environ is None else environ
    problems: list[str] = []

    def lookup(variable: str) -> SecretStr | None:
        value = env.get(variable, "").strip()
        return SecretStr(value) if value else None

    discord_token = lookup(token_env)
    if discord_token is None and require_discord:
        problems.append(f"environment variable {token_env} (the Discord bot token) is not set")
    api_keys: dict[str, SecretStr] = {}
    webhook_secrets: dict[str, SecretStr] = {}
    for name, provider in providers.items():
        key = lookup(provider.api_key_env)
        if key is None:
            problems.append(
                f"environment variable {provider.api_key_env} (the API key of provider "
                f'"{name}") is not set'
            )
        else:
            api_keys[name] = key
        secret_env = getattr(provider, "webhook_secret_env", None)
        secret = lookup(secret_env) if secret_env else None
        if secret is None:
            continue
        if provider.type == "replicate" and not secret.get_secret_value().startswith("whsec_"):
            problems.append(
                f"environment variable {secret_env} (the webhook signing secret of provider "
                f'"{name}") must start with whsec_'
            )
        else:
            webhook_secrets[name] = secret
    secrets = Secrets(
        discord_token=discord_token,
        provider_api_keys=api_keys,
        webhook_secrets=webhook_secrets,
    )
    return secrets, problems
