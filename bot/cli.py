"""Command line: ``imagine-bot run | check-config | generate``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import discord

from bot.core.clock import SystemClock
from bot.core.config import (
    AimlProviderSettings,
    ProviderSettings,
    ReplicateProviderSettings,
    Secrets,
    Settings,
)
from bot.core.config_loading import ConfigInvalid, load_configuration
from bot.core.domain import AspectRatio, GenerationRequest, OutputFormat, SafetyLevel, Tier
from bot.core.errors import BotError, InvalidRequest
from bot.core.images import ImageStore
from bot.core.jobs import validate_request
from bot.core.polling import await_completion, poll_waits
from bot.core.providers.base import ImageProvider, ProviderStatus
from bot.core.providers.registry import provider_clients
from bot.logs import configure_logging
from bot.runner import StartupFailed, log_in, run

# What the bot needs in a channel (README, "Discord application"), for the invite URL.
INVITE_PERMISSIONS = discord.Permissions(
    view_channel=True, send_messages=True, embed_links=True, attach_files=True
)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, help="TOML settings file (default: ./config.toml if present)"
    )
    parser = argparse.ArgumentParser(
        prog="imagine-bot", description="Discord bot for Google Imagen 4."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", parents=[common], help="run the bot")
    check = commands.add_parser(
        "check-config", parents=[common], help="validate settings, environment and API keys"
    )
    check.add_argument(
        "--offline",
        action="store_true",
        help="do not contact Discord and the providers to check the token and keys",
    )
    generate = commands.add_parser(
        "generate", parents=[common], help="generate one image without Discord"
    )
    generate.add_argument("prompt")
    generate.add_argument("--out", type=Path, required=True, help="directory for the images")
    generate.add_argument("--tier", choices=[t.value for t in Tier], default=Tier.FAST.value)
    generate.add_argument(
        "--aspect-ratio", choices=[a.value for a in AspectRatio], default=AspectRatio.SQUARE.value
    )
    generate.add_argument(
        "--safety",
        choices=[s.value for s in SafetyLevel],
        default=SafetyLevel.BLOCK_MEDIUM_AND_ABOVE.value,
    )
    generate.add_argument(
        "--output-format", choices=[f.value for f in OutputFormat], default=OutputFormat.JPG.value
    )
    generate.add_argument("--negative-prompt", help="what the image should not show")
    generate.add_argument("--seed", type=int, help="a number that makes the result repeatable")
    generate.add_argument("--count", type=int, default=1, help="how many images (1-4)")
    generate.add_argument("--provider", help="provider name (default: the tier's first)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    configure_logging()
    try:
        settings, secrets = load_configuration(
            arguments.config, require_discord=arguments.command != "generate"
        )
    except ConfigInvalid as exc:
        return _report(exc.problems)
    if arguments.command == "check-config":
        _summarise(settings)
        return 0 if arguments.offline else asyncio.run(check_online(settings, secrets))
    if arguments.command == "run":
        try:
            asyncio.run(run(settings, secrets))
        except StartupFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    request = GenerationRequest(
        prompt=arguments.prompt,
        tier=Tier(arguments.tier),
        aspect_ratio=AspectRatio(arguments.aspect_ratio),
        safety=SafetyLevel(arguments.safety),
        output_format=OutputFormat(arguments.output_format),
        negative_prompt=arguments.negative_prompt,
        seed=arguments.seed,
        image_count=arguments.count,
    )
    provider = arguments.provider or settings.tiers[request.tier].providers[0]
    if provider not in settings.providers:
        return _report([f"unknown provider {provider!r}; configured: {sorted(settings.providers)}"])
    try:
        paths = asyncio.run(generate(settings, secrets, request, provider, arguments.out))
    except BotError as exc:
        print(f"error: {exc.user_message}", file=sys.stderr)
        if exc.detail:
            print(f"detail: {exc.detail}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


async def generate(
    settings: Settings,
    secrets: Secrets,
    request: GenerationRequest,
    provider_name: str,
    out: Path,
) -> list[Path]:
    """Generations straight through one provider, polling (no callbacks without a listener):
    one request for all images where the provider returns that many, else one per image."""
    request = validate_request(request, max_prompt_length=settings.discord.max_prompt_length)
    store = ImageStore(out)
    async with provider_clients(settings, secrets, spool=store.spool) as providers:
        provider = providers[provider_name]
        capabilities = provider.capabilities(request.tier)
        if not capabilities.accepts_prompt(request.prompt):
            raise InvalidRequest(
                f"{provider_name} takes prompts of at most {capabilities.max_prompt_length} "
                "characters."
            )
        for option in capabilities.unmet(request):
            print(f"note: {provider_name} cannot set the {option.value}", file=sys.stderr)
        per_request = min(request.image_count, capabilities.max_images)
        paths: list[Path] = []
        for _ in range(0, request.image_count, per_request):
            paths += await _generate_once(
                settings, provider, dataclasses.replace(request, image_count=per_request), store
            )
    return paths


async def _generate_once(
    settings: Settings, provider: ImageProvider, request: GenerationRequest, store: ImageStore
) -> list[Path]:
    snapshot = await provider.start(request, callback_url=None)
    if snapshot.status is ProviderStatus.PENDING:
        clock = SystemClock()
        snapshot = await await_completion(
            provider,
            snapshot.id,
            deadline=clock.now() + settings.tiers[request.tier].deadline_seconds,
            waits=poll_waits(provider, settings.jobs),
            wake=asyncio.Event(),
            clock=clock,
        )
    if snapshot.failure is not None:
        raise snapshot.failure
    if snapshot.prompt_used and snapshot.prompt_used != request.prompt:
        print(f"note: the provider used the prompt {snapshot.prompt_used!r}", file=sys.stderr)
    images = await provider.download(snapshot)
    return await store.save(snapshot.id, images)


async def check_online(settings: Settings, secrets: Secrets) -> int:
    """The Discord token and every provider's key, each checked even if another fails."""
    discord_status = await check_discord(settings.discord.token_env, secrets)
    keys_status = await check_keys(settings, secrets)
    return max(discord_status, keys_status)


async def check_discord(token_env: str, secrets: Secrets) -> int:
    """Log in as the bot (``GET /users/@me``, which creates nothing) and print its invite URL;
    1 if Discord refuses the token or cannot be reached."""
    assert secrets.discord_token is not None
    # Never connected to the gateway; without the guilds intent discord.py warns of state issues.
    client = discord.Client(intents=discord.Intents(guilds=True))
    try:
        await log_in(client, secrets.discord_token.get_secret_value(), token_env=token_env)
        # Both come with the login: /users/@me and /oauth2/applications/@me.
        user, application_id = client.user, client.application_id
    except StartupFailed as exc:
        print(f"  discord: FAILED: {exc}")
        return 1
    finally:
        await client.close()
    assert user is not None
    assert application_id is not None
    invite = discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )
    print(f"  discord: token accepted (bot {user.name})")
    print(f"  invite: {invite}")
    return 0


async def check_keys(settings: Settings, secrets: Secrets) -> int:
    """One cheap authenticated call per provider that creates nothing; 1 if any key fails."""
    failures = 0
    async with provider_clients(settings, secrets) as providers:
        for name, provider in providers.items():
            try:
                outcome = await provider.check_key()
            except BotError as exc:
                failures += 1
                outcome = f"FAILED: {exc.detail or exc.user_message}"
            print(f"  key {name}: {outcome}")
    return 1 if failures else 0


def _report(problems: Sequence[str]) -> int:
    print(f"{len(problems)} configuration problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def _summarise(settings: Settings) -> None:
    callbacks = settings.webhook.public_url or "off (polling)"
    print("configuration OK")
    print(f"  database: {settings.database.path}")
    print(f"  images:   {settings.images.dir}")
    print(f"  callbacks: {callbacks}")
    for name, provider in settings.providers.items():
        print(f"  provider {name}: {provider.type} at {provider.base_url} ({_callbacks(provider)})")
    for tier, tier_settings in settings.tiers.items():
        print(f"  tier {tier.value}: {', '.join(tier_settings.providers)}")


def _callbacks(provider: ProviderSettings) -> str:
    if isinstance(provider, AimlProviderSettings):
        return "synchronous, no callbacks"
    if isinstance(provider, ReplicateProviderSettings) and provider.verifies_signatures:
        return "signed webhooks"
    return "URL-token callbacks"
