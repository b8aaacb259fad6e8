"""Which provider gets a job: capabilities first, then health, then the tier's order.

Each tier lists its providers in preference order. A provider that answers 429, 5xx,
timeouts or maintenance is backed off (for Retry-After when it says so) and, after
``failure_threshold`` such failures in a row, its circuit opens for ``cooldown_seconds``; a job
then goes to the tier's next provider. Health lives in memory: after a restart every provider
gets a fresh chance, which is what an operator who just fixed one expects.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from bot.core.config import RoutingSettings, Settings, TierSettings
from bot.core.domain import GenerationRequest, Option, Tier
from bot.core.errors import InvalidRequest, ProviderError, ProviderRateLimited
from bot.core.providers.base import ImageProvider, utf16_length

# Error rate and latency are shown over this many recent calls.
RECENT_CALLS = 20
# While a circuit's one trial call after its cool-down runs, other jobs look again this often.
PROBE_WAIT_SECONDS = 1.0


class HealthState(enum.StrEnum):
    HEALTHY = "healthy"
    BACKING_OFF = "backing off"
    OPEN = "circuit open"


@dataclass(frozen=True, slots=True)
class Route:
    """One way to run a job: the provider, the request as it will be sent (an output format
    the provider cannot make is replaced by the one it makes) and what it will not apply."""

    provider: ImageProvider
    request: GenerationRequest
    not_applied: frozenset[Option]


@dataclass(frozen=True, slots=True)
class HealthReport:
    provider: str
    state: HealthState
    available_at: float
    recent_calls: int
    error_rate: float | None
    average_latency: float | None
    last_error: str | None


@dataclass
class _Health:
    failures_in_a_row: int = 0
    backoff_until: float = 0.0
    open_until: float = 0.0
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    creates: deque[float] = field(default_factory=deque)
    last_error: str | None = None
    probing: bool = False


@dataclass(frozen=True, slots=True)
class CreateLimit:
    """At most ``count`` creates per ``window_seconds`` (Apikley: 20 per 10 s, §3.5)."""

    count: int
    window_seconds: float


class Router:
    def __init__(
        self,
        providers: Mapping[str, ImageProvider],
        tiers: Mapping[Tier, TierSettings],
        settings: RoutingSettings,
        *,
        create_limits: Mapping[str, CreateLimit] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._providers = providers
        self._tiers = tiers
        self._settings = settings
        self._limits = create_limits or {}
        self._clock = clock
        self._health = {name: _Health() for name in providers}

    # ----------------------------------------------------------------- planning

    def _candidates(self, tier: Tier) -> list[ImageProvider]:
        """The tier's providers that are running (those without an API key are not)."""
        names = self._tiers[tier].providers
        return [self._providers[name] for name in names if name in self._providers]

    def check(self, request: GenerationRequest) -> None:
        """Refuse, before anything is stored or spent, what no provider of the tier can take."""
        candidates = self._candidates(request.tier)
        if not candidates:
            raise InvalidRequest(
                "No image service is set up for this tier. Please pick another tier."
            )
        capabilities = [provider.capabilities(request.tier) for provider in candidates]
        if any(each.accepts_prompt(request.prompt) for each in capabilities):
            return
        # None accepts it, so every one of them has a limit.
        longest = max(each.max_prompt_length or 0 for each in capabilities)
        length = utf16_length(request.prompt)
        counted = " (emoji count twice)" if length != len(request.prompt) else ""
        raise InvalidRequest(
            f"Your prompt is {length} characters long{counted}; the image service for this "
            f"tier takes at most {longest}. Please shorten it."
        )

    def images_per_job(self, request: GenerationRequest) -> int:
        """How many of the requested images one job asks for: all of them when every
        provider of the tier returns that many per request, else one per job, so that any
        provider can take over any job."""
        candidates = self._candidates(request.tier)
        if all(p.capabilities(request.tier).max_images >= request.image_count for p in candidates):
            return request.image_count
        return 1

    def routes(self, request: GenerationRequest, *, exclude: Collection[str] = ()) -> list[Route]:
        """Providers that can take the request now: those honouring every option the member
        chose first, each group in the tier's order."""
        now = self._clock()
        routes = [
            self._route(provider, request)
            for provider in self._candidates(request.tier)
            if provider.name not in exclude
            and self._fits(provider, request)
            and self.available_at(provider.name) <= now
        ]
        return sorted(routes, key=lambda route: bool(route.not_applied))

    def preferred(self, request: GenerationRequest, *, exclude: Collection[str] = ()) -> str:
        """The provider a queued job will most likely go to, for its running limit."""
        routes = self.routes(request, exclude=exclude)
        if routes:
            return routes[0].provider.name
        return self._tiers[request.tier].providers[0]

    def next_available_at(
        self, request: GenerationRequest, *, exclude: Collection[str] = ()
    ) -> float | None:
        """When the first provider that could take the request is available again, if any."""
        times = [
            self.available_at(provider.name)
            for provider in self._candidates(request.tier)
            if provider.name not in exclude and self._fits(provider, request)
        ]
        return min(times, default=None)

    def _fits(self, provider: ImageProvider, request: GenerationRequest) -> bool:
        capabilities = provider.capabilities(request.tier)
        return (
            capabilities.accepts_prompt(request.prompt)
            and capabilities.max_images >= request.image_count
        )

    def route_via(self, provider: ImageProvider, request: GenerationRequest) -> Route:
        """The route a job takes to ``provider``, health aside: what was or will be sent."""
        return self._route(provider, request)

    def _route(self, provider: ImageProvider, request: GenerationRequest) -> Route:
        capabilities = provider.capabilities(request.tier)
        sent = request
        if request.output_format not in capabilities.output_formats:
            # Such a provider makes one format only (PNG at AIML and Apikley, §5).
            sent = dataclasses.replace(request, output_format=min(capabilities.output_formats))
        return Route(provider, sent, capabilities.unmet(request))

    # ----------------------------------------------------------------- health

    def available_at(self, name: str) -> float:
        health = self._health[name]
        moment = max(health.backoff_until, health.open_until)
        if health.probing:
            moment = max(moment, self._clock() + PROBE_WAIT_SECONDS)
        limit = self._limits.get(name)
        if limit is not None and limit.count:
            window_start = self._clock() - limit.window_seconds
            while health.creates and health.creates[0] <= window_start:
                health.creates.popleft()
            if len(health.creates) >= limit.count:
                moment = max(moment, health.creates[0] + limit.window_seconds)
        return moment

    def record_create(self, name: str) -> None:
        """Count a create against the provider's rate limit, before it is sent; after an open
        circuit's cool-down, the first one is the only trial until it answers (half-open)."""
        health = self._health[name]
        if health.failures_in_a_row >= self._settings.failure_threshold:
            health.probing = True
        limit = self._limits.get(name)
        if limit is not None and limit.count:
            health.creates.append(self._clock())

    def record_success(self, name: str, latency: float) -> None:
        health = self._health[name]
        health.probing = False
        health.failures_in_a_row = 0
        health.backoff_until = 0.0
        health.outcomes.append(True)
        health.latencies.append(latency)

    def record_failure(self, name: str, error: ProviderError) -> None:
        """Count a provider's own fault; the request's faults (validation, safety) say nothing
        about its health."""
        health = self._health[name]
        health.probing = False
        if not error.provider_fault:
            return
        now = self._clock()
        health.failures_in_a_row += 1
        health.outcomes.append(False)
        health.last_error = f"{type(error).__name__}: {error.detail or error.user_message}"
        retry_after = error.retry_after if isinstance(error, ProviderRateLimited) else None
        if retry_after is None:
            retry_after = min(2.0**health.failures_in_a_row, self._settings.cooldown_seconds)
        health.backoff_until = now + retry_after
        if health.failures_in_a_row >= self._settings.failure_threshold:
            health.open_until = now + self._settings.cooldown_seconds

    def health(self) -> list[HealthReport]:
        now = self._clock()
        reports = []
        for name, health in self._health.items():
            available_at = self.available_at(name)
            if health.open_until > now:
                state = HealthState.OPEN
            elif available_at > now:
                state = HealthState.BACKING_OFF
            else:
                state = HealthState.HEALTHY
            calls = len(health.outcomes)
            reports.append(
                HealthReport(
                    provider=name,
                    state=state,
                    available_at=available_at,
                    recent_calls=calls,
                    error_rate=(health.outcomes.count(False) / calls) if calls else None,
                    average_latency=(
                        sum(health.latencies) / len(health.latencies) if health.latencies else None
                    ),
                    last_error=health.last_error,
                )
            )
        return reports


def router_for(
    settings: Settings,
    providers: Mapping[str, ImageProvider],
    *,
    clock: Callable[[], float] = time.time,
) -> Router:
    """The router for the configured tiers, routing settings and providers' create limits."""
    return Router(
        providers,
        settings.tiers,
        settings.routing,
        create_limits={
            name: CreateLimit(each.create_limit, each.create_window_seconds)
            for name, each in settings.providers.items()
        },
        clock=clock,
    )
