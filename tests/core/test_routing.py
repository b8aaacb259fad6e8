"""The router: capabilities decide who can take a job, health decides who takes it now."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.core.config import (
    AimlProviderSettings,
    ApikleyProviderSettings,
    ReplicateProviderSettings,
    RoutingSettings,
    TierSettings,
)
from bot.core.domain import GenerationRequest, Option, OutputFormat, Tier
from bot.core.errors import (
    InvalidRequest,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from bot.core.providers.aimlapi import AimlProvider
from bot.core.providers.apikley import ApikleyProvider
from bot.core.providers.base import ImageProvider
from bot.core.providers.http import HttpClient
from bot.core.providers.replicate import ReplicateProvider
from bot.core.routing import CreateLimit, HealthState, Router
from tests.factories import ManualClock, a_request

KEY = SecretStr("key")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def providers(http: HttpClient) -> dict[str, ImageProvider]:
    """One of each type; the router only reads their names and capabilities."""
    return {
        "replicate": ReplicateProvider(
            "replicate", ReplicateProviderSettings(), api_key=KEY, webhook_secret=None, http=http
        ),
        "aiml": AimlProvider(
            "aiml", AimlProviderSettings.model_validate({"type": "aimlapi"}), api_key=KEY, http=http
        ),
        "apikley": ApikleyProvider(
            "apikley",
            ApikleyProviderSettings.model_validate({"type": "apikley"}),
            api_key=KEY,
            webhook_key=None,
            http=http,
        ),
    }


def a_router(
    providers: dict[str, ImageProvider],
    clock: ManualClock,
    order: list[str],
    *,
    limits: dict[str, CreateLimit] | None = None,
) -> Router:
    tiers = {tier: TierSettings(providers=order, credits=1) for tier in Tier}
    return Router(
        providers,
        tiers,
        RoutingSettings(failure_threshold=3, cooldown_seconds=60),
        create_limits=limits,
        clock=clock,
    )


def names(router: Router, request: GenerationRequest | None = None) -> list[str]:
    return [route.provider.name for route in router.routes(request or a_request())]


def test_the_tiers_order_decides_when_every_provider_can_honour_the_request(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["aiml", "replicate", "apikley"])

    assert names(router) == ["aiml", "replicate", "apikley"]


def test_a_provider_honouring_a_chosen_option_goes_first(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate", "aiml", "apikley"])

    assert names(router, a_request(negative_prompt="blur")) == ["apikley", "replicate", "aiml"]


def test_a_route_names_the_chosen_options_it_cannot_apply(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["apikley"])
    request = a_request(chosen=frozenset({Option.SAFETY, Option.OUTPUT_FORMAT}))

    [route] = router.routes(request)

    assert route.not_applied == {Option.SAFETY, Option.OUTPUT_FORMAT}


def test_an_option_left_at_its_default_is_not_reported(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["apikley"])

    [route] = router.routes(a_request())

    assert route.not_applied == frozenset()


def test_a_provider_that_makes_only_png_is_sent_png(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["aiml"])

    [route] = router.routes(a_request(output_format=OutputFormat.JPG))

    assert route.request.output_format is OutputFormat.PNG


def test_a_chosen_png_is_honoured_by_a_png_only_provider(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["aiml"])
    request = a_request(output_format=OutputFormat.PNG, chosen=frozenset({Option.OUTPUT_FORMAT}))

    [route] = router.routes(request)

    assert route.not_applied == frozenset()


def test_a_prompt_too_long_for_every_provider_is_refused_with_the_limit(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["aiml"])

    with pytest.raises(InvalidRequest, match="at most 400"):
        router.check(a_request("x" * 401))


def test_a_prompt_too_long_for_one_provider_goes_to_another(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["aiml", "replicate"])
    long_prompt = "x" * 401

    router.check(a_request(long_prompt))

    assert names(router, a_request(long_prompt)) == ["replicate"]


def test_a_tier_without_a_running_provider_is_refused(clock: ManualClock) -> None:
    router = a_router({}, clock, ["replicate"])

    with pytest.raises(InvalidRequest, match="No image service"):
        router.check(a_request())


@pytest.mark.parametrize(
    ("order", "tier", "expected"),
    [
        (["aiml"], Tier.ULTRA, 4),
        (["apikley"], Tier.FAST, 4),
        (["apikley"], Tier.STANDARD, 1),
        (["replicate"], Tier.FAST, 1),
        (["aiml", "replicate"], Tier.FAST, 1),
    ],
)
def test_images_per_job_is_what_every_provider_of_the_tier_can_return(
    providers: dict[str, ImageProvider],
    clock: ManualClock,
    order: list[str],
    tier: Tier,
    expected: int,
) -> None:
    router = a_router(providers, clock, order)

    assert router.images_per_job(a_request(tier=tier, image_count=4)) == expected


def test_a_rate_limited_provider_is_skipped_until_retry_after(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate", "aiml"])

    router.record_failure("replicate", ProviderRateLimited(30.0))

    assert names(router) == ["aiml"]
    clock.now += 30
    assert names(router) == ["replicate", "aiml"]


def test_repeated_failures_open_the_circuit_for_the_cool_down(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate", "aiml"])

    for _ in range(3):
        router.record_failure("replicate", ProviderUnavailable(detail="HTTP 502"))

    [report] = [r for r in router.health() if r.provider == "replicate"]
    assert report.state is HealthState.OPEN
    assert report.available_at == clock.now + 60
    assert report.error_rate == 1.0
    clock.now += 59
    assert names(router) == ["aiml"]
    clock.now += 1
    assert names(router) == ["replicate", "aiml"]


def test_a_success_closes_the_circuit_and_records_latency(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate"])
    router.record_failure("replicate", ProviderUnavailable())

    router.record_success("replicate", 2.5)

    [report] = [r for r in router.health() if r.provider == "replicate"]
    assert report.state is HealthState.HEALTHY
    assert (report.recent_calls, report.error_rate, report.average_latency) == (2, 0.5, 2.5)
    assert names(router) == ["replicate"]


def test_a_request_fault_says_nothing_about_the_providers_health(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate"])

    router.record_failure("replicate", ProviderRejected())

    assert names(router) == ["replicate"]
    [report] = [r for r in router.health() if r.provider == "replicate"]
    assert report.recent_calls == 0


def test_a_provider_at_its_create_limit_waits_for_the_window(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(
        providers, clock, ["apikley", "aiml"], limits={"apikley": CreateLimit(2, 10.0)}
    )
    router.record_create("apikley")
    clock.now += 1
    router.record_create("apikley")

    assert names(router) == ["aiml"]
    assert router.available_at("apikley") == clock.now + 9
    clock.now += 9
    assert names(router) == ["apikley", "aiml"]


def test_next_available_at_ignores_excluded_providers(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate", "aiml"])
    router.record_failure("replicate", ProviderRateLimited(5.0))
    router.record_failure("aiml", ProviderRateLimited(20.0))

    assert router.next_available_at(a_request()) == clock.now + 5
    assert router.next_available_at(a_request(), exclude={"replicate"}) == clock.now + 20
    assert router.next_available_at(a_request(), exclude={"replicate", "aiml"}) is None


def test_the_refusal_explains_that_emoji_count_twice(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["aiml"])

    with pytest.raises(InvalidRequest, match=r"401 characters long \(emoji count twice\)"):
        router.check(a_request("\N{FOX FACE}" + "x" * 399))


def test_after_the_cool_down_one_trial_call_goes_first(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate"])
    for _ in range(3):
        router.record_failure("replicate", ProviderUnavailable())
    clock.advance(60)

    assert names(router) == ["replicate"]
    router.record_create("replicate")
    assert names(router) == []  # the others wait for the trial's answer
    router.record_success("replicate", 1.0)
    assert names(router) == ["replicate"]


def test_a_failed_trial_call_opens_the_circuit_again(
    providers: dict[str, ImageProvider], clock: ManualClock
) -> None:
    router = a_router(providers, clock, ["replicate"])
    for _ in range(3):
        router.record_failure("replicate", ProviderUnavailable())
    clock.advance(60)
    router.record_create("replicate")

    router.record_failure("replicate", ProviderUnavailable())

    assert router.available_at("replicate") == clock.now + 60
