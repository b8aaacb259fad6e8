"""Which value each /imagine option takes: the command, the member, the server, the bot; the
safety floor last; and which options count as the member's choice."""

from __future__ import annotations

from bot.core.domain import AspectRatio, GenerationRequest, Option, OutputFormat, SafetyLevel, Tier
from bot.core.preferences import (
    BUILT_IN,
    Draft,
    Source,
    apply_safety_floor,
    effective_defaults,
    resolve_request,
)
from bot.core.storage.protocols import OptionDefaults

DRAFT = Draft("a lighthouse")
NONE = OptionDefaults()
STRICT = SafetyLevel.BLOCK_LOW_AND_ABOVE
BALANCED = SafetyLevel.BLOCK_MEDIUM_AND_ABOVE
LENIENT = SafetyLevel.BLOCK_ONLY_HIGH


def test_with_nothing_set_the_built_in_defaults_apply_and_nothing_is_chosen() -> None:
    request = resolve_request(DRAFT, NONE, NONE, NONE)

    assert (request.tier, request.aspect_ratio, request.safety, request.output_format) == (
        BUILT_IN.tier,
        BUILT_IN.aspect_ratio,
        BUILT_IN.safety,
        BUILT_IN.output_format,
    )
    assert request.chosen == frozenset()


def test_the_server_default_beats_the_built_in_one_but_is_not_chosen() -> None:
    server = OptionDefaults(tier=Tier.STANDARD, aspect_ratio=AspectRatio.LANDSCAPE_WIDE)

    request = resolve_request(DRAFT, NONE, NONE, server)

    assert (request.tier, request.aspect_ratio) == (Tier.STANDARD, AspectRatio.LANDSCAPE_WIDE)
    assert request.chosen == frozenset()


def test_the_members_default_beats_the_servers_and_counts_as_chosen() -> None:
    member = OptionDefaults(tier=Tier.ULTRA, safety=STRICT, output_format=OutputFormat.PNG)
    server = OptionDefaults(tier=Tier.STANDARD)

    request = resolve_request(DRAFT, NONE, member, server)

    assert (request.tier, request.safety, request.output_format) == (
        Tier.ULTRA,
        STRICT,
        OutputFormat.PNG,
    )
    assert request.chosen == {Option.SAFETY, Option.OUTPUT_FORMAT}


def test_an_option_given_in_the_command_beats_every_default() -> None:
    given = OptionDefaults(tier=Tier.FAST, aspect_ratio=AspectRatio.PORTRAIT, safety=LENIENT)
    member = OptionDefaults(tier=Tier.ULTRA, aspect_ratio=AspectRatio.SQUARE, safety=STRICT)
    server = OptionDefaults(tier=Tier.STANDARD, aspect_ratio=AspectRatio.LANDSCAPE)

    request = resolve_request(DRAFT, given, member, server)

    assert (request.tier, request.aspect_ratio, request.safety) == (
        Tier.FAST,
        AspectRatio.PORTRAIT,
        LENIENT,
    )
    assert request.chosen == {Option.SAFETY}


def test_the_draft_is_carried_over_whole() -> None:
    draft = Draft("a fox", negative_prompt="snow", seed=7, image_count=3)

    request = resolve_request(draft, NONE, NONE, NONE)

    assert (request.prompt, request.negative_prompt, request.seed, request.image_count) == (
        "a fox",
        "snow",
        7,
        3,
    )


def test_a_request_more_lenient_than_the_floor_runs_at_the_floor_and_says_so() -> None:
    request = GenerationRequest("a fox", safety=LENIENT, chosen=frozenset({Option.SAFETY}))

    floored, floor = apply_safety_floor(request, STRICT)

    assert (floored.safety, floor) == (STRICT, STRICT)


def test_a_floor_that_raises_the_level_makes_safety_chosen() -> None:
    floored, _ = apply_safety_floor(GenerationRequest("a fox", safety=BALANCED), STRICT)

    assert Option.SAFETY in floored.chosen


def test_a_request_as_strict_as_the_floor_or_stricter_keeps_its_level() -> None:
    for level in (STRICT, BALANCED):
        request = GenerationRequest("a fox", safety=level)

        kept, floor = apply_safety_floor(request, BALANCED)

        assert (kept.safety, floor) == (level, None)


def test_under_a_floor_safety_counts_as_chosen_even_when_the_level_is_kept() -> None:
    """A provider that cannot set a safety level would run at its own: never silently."""
    kept, _ = apply_safety_floor(GenerationRequest("a fox", safety=STRICT), BALANCED)

    assert Option.SAFETY in kept.chosen


def test_a_lenient_floor_is_no_floor() -> None:
    request = GenerationRequest("a fox", safety=LENIENT)

    assert apply_safety_floor(request, LENIENT) == (request, None)


def test_no_floor_leaves_every_level_alone() -> None:
    request = GenerationRequest("a fox", safety=LENIENT)

    assert apply_safety_floor(request, None) == (request, None)


def test_the_floor_applies_after_the_members_own_lenient_default() -> None:
    member = OptionDefaults(safety=LENIENT)

    floored, floor = apply_safety_floor(resolve_request(DRAFT, NONE, member, NONE), STRICT)

    assert (floored.safety, floor) == (STRICT, STRICT)


def test_settings_show_each_default_and_where_it_comes_from() -> None:
    member = OptionDefaults(safety=STRICT)
    server = OptionDefaults(tier=Tier.STANDARD)

    effective = effective_defaults(member, server)

    assert effective == {
        "tier": (Tier.STANDARD, Source.SERVER),
        "aspect_ratio": (AspectRatio.SQUARE, Source.BUILT_IN),
        "safety": (STRICT, Source.MEMBER),
        "output_format": (OutputFormat.JPG, Source.BUILT_IN),
    }
