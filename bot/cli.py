"""Command line: ``imagine-bot run | check-config | generate``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.core.config import ConfigInvalid, Secrets, Settings, load_settings, read_secrets
from bot.core.domain import AspectRatio, GenerationRequest, OutputFormat, SafetyLevel, Tier
from bot.core.errors import BotError
from bot.core.images import ImageStore
from bot.core.jobs import await_completion, poll_waits, validate_request
from bot.core.providers.base import ProviderStatus
from bot.runner import provider_clients, run


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
    commands.add_parser("check-config", parents=[common], help="validate settings and environment")
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
    generate.add_argument("--provider", help="provider name (default: the tier's first)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(arguments.config)
    except ConfigInvalid as exc:
        return _report(exc.problems)
    secrets, problems = read_secrets(settings, require_discord=arguments.command != "generate")
    if arguments.command == "check-config":
        return _report(problems) if problems else _summarise(settings)
    if problems:
        return _report(problems)
    if arguments.command == "run":
        asyncio.run(run(settings, secrets))
        return 0
    request = GenerationRequest(
        prompt=arguments.prompt,
        tier=Tier(arguments.tier),
        aspect_ratio=AspectRatio(arguments.aspect_ratio),
        safety=SafetyLevel(arguments.safety),
        output_format=OutputFormat(arguments.output_format),
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
    """One generation straight through a provider, polling (no callbacks without a listener)."""
    request = validate_request(request, max_prompt_length=settings.discord.max_prompt_length)
    async with provider_clients(settings, secrets) as providers:
        provider = providers[provider_name]
        snapshot = await provider.start(request, callback_url=None)
        if snapshot.status is ProviderStatus.PENDING:
            snapshot = await await_completion(
                provider,
                snapshot.id,
                deadline=time.time() + settings.tiers[request.tier].deadline_seconds,
                waits=poll_waits(settings.jobs),
                wake=asyncio.Event(),
            )
        if snapshot.failure is not None:
            raise snapshot.failure
        images = await provider.download(snapshot)
    return await ImageStore(out).save(snapshot.id, images)


def _report(problems: Sequence[str]) -> int:
    print(f"{len(problems)} configuration problem(s):", file=sys.stderr)
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


def _summarise(settings: Settings) -> int:
    callbacks = settings.webhook.public_url or "off (polling)"
    print("configuration OK")
    print(f"  database: {settings.database.path}")
    print(f"  images:   {settings.images.dir}")
    print(f"  callbacks: {callbacks}")
    for name, provider in settings.providers.items():
        mode = "signed webhooks" if provider.verifies_signatures else "URL-token webhooks"
        print(f"  provider {name}: {provider.type} at {provider.base_url} ({mode})")
    for tier, tier_settings in settings.tiers.items():
        print(f"  tier {tier.value}: {', '.join(tier_settings.providers)}")
    return 0
