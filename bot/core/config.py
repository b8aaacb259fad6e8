"""Configuration: pydantic models read from an optional TOML file, secrets from the environment.

Every setting has a default, so ``imagine-bot run`` works with nothing but ``DISCORD_TOKEN`` and
``REPLICATE_API_TOKEN`` set. Secrets never appear in the file: the file only names the
environment variables that hold them, and resolved secrets are ``SecretStr`` so that no repr or
log line can print them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveFloat,
    SecretStr,
    Tag,
    model_validator,
)

from bot.core.domain import Tier

DEFAULT_CONFIG_PATH = Path("config.toml")
OFFICIAL_REPLICATE_HOST = "api.replicate.com"
# A host name or IPv4 address, optionally "*." for its subdomains and ":port" for one port.
IMAGE_HOST_PATTERN = (
    r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$"
)
ImageHosts = list[Annotated[str, Field(pattern=IMAGE_HOST_PATTERN)]]


def image_hosts_field(*defaults: str) -> Any:
    """``image_hosts`` of a provider type, with that type's defaults (its API's file hosts)."""
    return Field(
        default_factory=lambda: list(defaults),
        description="Hosts ('host', '*.host', optionally ':port') images may come from besides "
        "base_url's origin, even with public_image_hosts = false.",
    )


class _Section(BaseModel):
    # A typo in a key is a problem to report, not a setting to ignore silently.
    model_config = ConfigDict(extra="forbid", frozen=True)
    # Keys an older release took here, each with what replaced it: check-config says they
    # can be deleted, rather than calling them unknown.
    removed_keys: ClassVar[Mapping[str, str]] = {}


class DatabaseSettings(_Section):
    path: Path = Path("data/imagine-bot.sqlite3")


class ImageSettings(_Section):
    dir: Path = Path("data/images")
    keep_days: int = Field(
        default=30,
        ge=0,
        le=36_500,
        description="Stored images older than this many days are deleted by a daily sweep, "
        "except those not yet delivered and those shared in the prompt library (0 = keep all).",
    )


class WebhookSettings(_Section):
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=0, le=65535)
    public_url: AnyHttpUrl | None = Field(
        default=None,
        description="Where providers can reach the listener; without it the bot polls.",
    )
    max_body_bytes: int = Field(
        default=256 * 1024,
        gt=0,
        description="A prediction object is a few KiB; anything far larger is not a callback.",
    )


class GallerySettings(_Section):
    """The web gallery of shared prompts (issue 12), served by the callback listener at
    ``{public_url}/gallery/{guild_id}``; each server's admins must turn it on for theirs too."""

    enabled: bool = False
    per_page: int = Field(
        default=24,
        ge=1,
        le=100,
        description="Thumbnails per page of the grid (24 fill 2, 3, 4 or 6 columns evenly).",
    )


class MetricsSettings(_Section):
    """Prometheus metrics at ``GET /metrics`` (issue 13)."""

    enabled: bool = True
    listen_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve /metrics on this port of listen_host instead of the callback "
        "listener's, so it can stay off the public address.",
    )
    token_env: str | None = Field(
        default=None,
        description="Variable holding a bearer token a scraper must send "
        "(Authorization: Bearer ...); unset, /metrics is open to whoever reaches it.",
    )


class LoggingSettings(_Section):
    """One line per event on standard error; secrets are redacted at every level."""

    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ShutdownSettings(_Section):
    grace_seconds: float = Field(
        default=8.0,
        gt=0,
        le=600,
        description="On SIGTERM, how long in-flight work may take to finish before it is left "
        "recorded for the next start. docker stop waits 10 s before SIGKILL by default.",
    )


class DiscordSettings(_Section):
    token_env: str = "DISCORD_TOKEN"
    sync_commands: bool = True
    max_prompt_length: int = Field(
        default=1000,
        ge=1,
        le=4000,
        description="Imagen reads at most 480 tokens (providers.md §4.2); ~1000 chars is safe.",
    )


class ProviderSection(_Section):
    """What every provider has: where it is, which variable holds its key, its model ids."""

    base_url: AnyHttpUrl
    api_key_env: str
    models: dict[Tier, str]
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    create_limit: int = Field(
        default=0,
        ge=0,
        description="Creates allowed per create_window_seconds (0 = unlimited).",
    )
    create_window_seconds: float = Field(default=60.0, gt=0)
    image_hosts: ImageHosts = image_hosts_field()
    public_image_hosts: bool = Field(
        default=True,
        description="Also fetch images from any other host that resolves only to public "
        "addresses; false allows only base_url and image_hosts.",
    )
    private_image_hosts: bool = Field(
        default=False,
        description="Let base_url's host and image_hosts names resolve to private or loopback "
        "addresses (a proxy or CDN on your own network). Off, they are fetched from public "
        "addresses only, since whoever runs a proxy controls its DNS; an IP address written "
        "in base_url or image_hosts is always used as written.",
    )


class ReplicateProviderSettings(ProviderSection):
    """Official Replicate or a Replicate-compatible proxy such as kkiai (providers.md §1)."""

    type: Literal["replicate"] = "replicate"
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.replicate.com/v1")
    api_key_env: str = "REPLICATE_API_TOKEN"
    webhook_secret_env: str | None = "REPLICATE_WEBHOOK_SECRET"
    webhook_mode: Literal["signed", "token"] | None = Field(
        default=None,
        description=(
            "signed: verify Replicate's webhook signature; token: trust nothing but the per-job "
            "URL token and confirm by GET. Default: signed for api.replicate.com, token otherwise."
        ),
    )
    models: dict[Tier, str] = Field(
        default_factory=lambda: {
            Tier.FAST: "google/imagen-4-fast",
            Tier.STANDARD: "google/imagen-4",
            Tier.ULTRA: "google/imagen-4-ultra",
        }
    )
    cancel_after: str | None = Field(
        default="10m",
        pattern=r"^\d+[smh]$",
        description="Cancel-After header: a prediction not started by then is aborted unbilled.",
    )
    # Replicate allows 600 creates a minute (providers.md §1.7).
    create_limit: int = Field(default=600, ge=0)
    create_window_seconds: float = Field(default=60.0, gt=0)
    # Output files live on replicate.delivery and its subdomains (providers.md §1.3).
    image_hosts: ImageHosts = image_hosts_field("replicate.delivery", "*.replicate.delivery")

    @property
    def is_official(self) -> bool:
        return urlsplit(str(self.base_url)).hostname == OFFICIAL_REPLICATE_HOST

    @property
    def verifies_signatures(self) -> bool:
        mode = self.webhook_mode or ("signed" if self.is_official else "token")
        return mode == "signed"


class AimlProviderSettings(ProviderSection):
    """AIML API: one synchronous call returns the images (providers.md §2)."""

    type: Literal["aimlapi"]
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.aimlapi.com/v1")
    api_key_env: str = "AIMLAPI_API_KEY"
    models: dict[Tier, str] = Field(
        default_factory=lambda: {
            Tier.FAST: "google/imagen-4.0-fast-generate-001",
            Tier.STANDARD: "google/imagen-4.0-generate-001",
            Tier.ULTRA: "google/imagen-4.0-ultra-generate-001",
        }
    )
    # The answer carries the images, and Ultra takes tens of seconds (providers.md §2.4).
    request_timeout_seconds: float = Field(default=180.0, gt=0)
    enhance_prompt: bool = Field(
        default=False,
        description="AIML's LLM rewrite of the prompt (its own default is on); off keeps the "
        "member's words.",
    )
    person_generation: Literal["dont_allow", "allow_adult"] = "allow_adult"
    # Image URLs point at AIML's CDN (providers.md §2.3).
    image_hosts: ImageHosts = image_hosts_field("cdn.aimlapi.com")


class ApikleyProviderSettings(ProviderSection):
    """Apikley (a KIE.ai market API clone): task, callback and polling (providers.md §3)."""

    removed_keys: ClassVar[Mapping[str, str]] = {
        "callback_grace_seconds": "Apikley is polled on poll_intervals_seconds from the "
        "start, and a callback only cuts the wait short"
    }

    type: Literal["apikley"]
    base_url: AnyHttpUrl = AnyHttpUrl("https://api.apikley.ru")
    api_key_env: str = "APIKLEY_API_KEY"
    webhook_secret_env: str | None = Field(
        default=None,
        description="Variable holding a KIE-style webhook HMAC key, if the account signs "
        "callbacks; without it only the per-job URL token and recordInfo are trusted.",
    )
    models: dict[Tier, str] = Field(
        default_factory=lambda: {
            Tier.FAST: "google/imagen4-fast",
            Tier.STANDARD: "google/imagen4",
            Tier.ULTRA: "google/imagen4-ultra",
        }
    )
    # 20 new generation requests per 10 s per account; excess is refused (providers.md §3.5).
    create_limit: int = Field(default=20, ge=0)
    create_window_seconds: float = Field(default=10.0, gt=0)
    poll_intervals_seconds: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        default=(2.5, 7.5, 20.0),
        description="Seconds between recordInfo polls for a task's first 30 s, until 2 min, "
        "and after (providers.md §3.3: 2-3 s, then 5-10 s, then 15-30 s).",
    )


def _provider_type(value: object) -> str:
    """A provider without ``type`` is Replicate-format, as before other types existed."""
    if isinstance(value, dict):
        return str(value.get("type", "replicate"))
    return str(getattr(value, "type", "replicate"))


ProviderSettings = Annotated[
    Annotated[ReplicateProviderSettings, Tag("replicate")]
    | Annotated[AimlProviderSettings, Tag("aimlapi")]
    | Annotated[ApikleyProviderSettings, Tag("apikley")],
    Discriminator(_provider_type),
]


# Credits per image follow Replicate's prices of $0.02 / $0.04 / $0.06 (providers.md §1.10).
DEFAULT_TIER_CREDITS = {Tier.FAST: 1, Tier.STANDARD: 2, Tier.ULTRA: 3}
# Ultra takes up to ~20 s at the provider; ten minutes leaves room for a queue and retries.
DEFAULT_DEADLINE_SECONDS = 600.0


class TierSettings(_Section):
    providers: list[str] = Field(default_factory=lambda: ["replicate"], min_length=1)
    credits: int = Field(ge=0, le=1000, description="Cost of one image in this tier.")
    deadline_seconds: float = Field(
        default=DEFAULT_DEADLINE_SECONDS,
        gt=0,
        le=86_400,
        description="A job not finished this long after it was queued fails and is refunded.",
    )


class QuotaSettings(_Section):
    """Credits per period; 0 means unlimited. Admins override these per guild."""

    member_daily_credits: int = Field(default=10, ge=0, le=1_000_000)
    member_monthly_credits: int = Field(default=100, ge=0, le=1_000_000)
    guild_monthly_credits: int = Field(default=0, ge=0, le=100_000_000)


class QueueSettings(_Section):
    max_running_per_guild: int = Field(default=2, ge=1, le=100)
    max_running_per_provider: int = Field(
        default=8,
        ge=1,
        le=100,
        description="Jobs at one provider at once, across all guilds.",
    )
    max_queued_per_member: int = Field(default=5, ge=1, le=1000)
    max_queued_per_guild: int = Field(default=50, ge=1, le=100_000)


class RoutingSettings(_Section):
    """When a provider counts as down, and for how long the bot leaves it alone."""

    failure_threshold: int = Field(
        default=3, ge=1, le=100, description="Failures in a row that open the circuit."
    )
    cooldown_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How long an open circuit keeps a provider out."
    )


class JobSettings(_Section):
    """How Replicate-format jobs are polled: a callback only cuts a wait short."""

    poll_initial_seconds: float = Field(default=1.0, gt=0)
    poll_max_seconds: float = Field(default=5.0, gt=0)


def official_replicate() -> dict[str, ProviderSettings]:
    return {"replicate": ReplicateProviderSettings()}


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    images: ImageSettings = ImageSettings()
    webhook: WebhookSettings = WebhookSettings()
    discord: DiscordSettings = DiscordSettings()
    jobs: JobSettings = JobSettings()
    quotas: QuotaSettings = QuotaSettings()
    queue: QueueSettings = QueueSettings()
    routing: RoutingSettings = RoutingSettings()
    gallery: GallerySettings = GallerySettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    shutdown: ShutdownSettings = ShutdownSettings()
    providers: dict[str, ProviderSettings] = Field(default_factory=official_replicate)
    # Filled for every tier by _tier_defaults; the default only tells type checkers so.
    tiers: dict[Tier, TierSettings] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _tier_defaults(cls, data: object) -> object:
        """A tier the file does not mention is served by all providers, in file order, at its
        default price."""
        if not isinstance(data, dict):
            return data
        providers = data.get("providers")
        names = list(providers) if isinstance(providers, dict) and providers else ["replicate"]
        tiers = data.get("tiers", {})
        if not isinstance(tiers, dict):
            return data  # "tiers = 5": validation reports that it is not a table
        tiers = dict(tiers)
        for tier in Tier:
            given = tiers.get(tier.value, {})
            if isinstance(given, dict):  # anything else is left for validation to report
                tiers[tier.value] = {
                    "providers": names,
                    "credits": DEFAULT_TIER_CREDITS[tier],
                    **given,
                }
        return {**data, "tiers": tiers}

    @model_validator(mode="after")
    def _tiers_name_known_providers(self) -> Settings:
        problems = [
            f"tiers.{tier.value}.providers names unknown provider {name!r}"
            for tier, tier_settings in self.tiers.items()
            for name in tier_settings.providers
            if name not in self.providers
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Secrets(BaseModel):
    """Secrets resolved from the environment; SecretStr keeps them out of reprs and logs."""

    model_config = ConfigDict(frozen=True)

    discord_token: SecretStr | None
    provider_api_keys: dict[str, SecretStr]
    webhook_secrets: dict[str, SecretStr]
    metrics_token: SecretStr | None = None
