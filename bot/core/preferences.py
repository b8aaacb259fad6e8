"""Which value each /imagine option takes, and the server's safety floor.

Precedence, for each option a member may leave out: the option given in the command, then
the member's own default (/settings), then the server's default (/imagine-admin settings
defaults), then the bot's built-in default. The safety floor applies last, to every request
however it was made (``JobService.submit`` applies it, so the result buttons cannot bypass
it): a request more lenient than the floor runs at the floor; a stricter one is untouched.

"Chosen" (``GenerationRequest.chosen``) means the member asked for it, in the command or as
their own default: a provider that cannot honour it is avoided, or the member is told. A
server or built-in default is not the member's wish, so any provider may serve it. A floor
is the server's rule and must hold too: under one, safety always counts as chosen, so a
provider that cannot set a safety level (and would run at its own) is never used silently.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.core.domain import (
    AspectRatio,
    GenerationRequest,
    Member,
    Option,
    OutputFormat,
    SafetyLevel,
    Tier,
)
from bot.core.quotas import QuotaService
from bot.core.storage.protocols import MemberDefaultsStore, OptionDefaults

T = TypeVar("T")

BUILT_IN = OptionDefaults(
    tier=Tier.FAST,
    aspect_ratio=AspectRatio.SQUARE,
    safety=SafetyLevel.BLOCK_MEDIUM_AND_ABOVE,
    output_format=OutputFormat.JPG,
)
# Higher is stricter: Strict blocks the most, Lenient the least.
STRICTNESS = {
    SafetyLevel.BLOCK_LOW_AND_ABOVE: 2,
    SafetyLevel.BLOCK_MEDIUM_AND_ABOVE: 1,
    SafetyLevel.BLOCK_ONLY_HIGH: 0,
}


def is_more_lenient(level: SafetyLevel, *, than: SafetyLevel) -> bool:
    return STRICTNESS[level] < STRICTNESS[than]


@dataclass(frozen=True, slots=True)
class Draft:
    """What a command gives besides the options that have defaults."""

    prompt: str
    negative_prompt: str | None = None
    seed: int | None = None
    image_count: int = 1


def _first(*values: T | None) -> T:
    return next(value for value in values if value is not None)


def resolve_request(
    draft: Draft, given: OptionDefaults, member: OptionDefaults, server: OptionDefaults
) -> GenerationRequest:
    """The request a command becomes, each option from the first level that sets it
    (``given``: the command's own options, None where left out). The floor is not applied
    here: ``apply_safety_floor`` does, for every request alike."""
    levels = (given, member, server, BUILT_IN)

    def pick(field: Callable[[OptionDefaults], T | None]) -> T:
        return _first(*(field(level) for level in levels))

    chosen: set[Option] = set()
    if given.safety is not None or member.safety is not None:
        chosen.add(Option.SAFETY)
    if given.output_format is not None or member.output_format is not None:
        chosen.add(Option.OUTPUT_FORMAT)
    return GenerationRequest(
        prompt=draft.prompt,
        tier=pick(lambda level: level.tier),
        aspect_ratio=pick(lambda level: level.aspect_ratio),
        safety=pick(lambda level: level.safety),
        output_format=pick(lambda level: level.output_format),
        negative_prompt=draft.negative_prompt,
        seed=draft.seed,
        image_count=draft.image_count,
        chosen=frozenset(chosen),
    )


def apply_safety_floor(
    request: GenerationRequest, floor: SafetyLevel | None
) -> tuple[GenerationRequest, SafetyLevel | None]:
    """The request at no more lenient a level than ``floor``, and the floor when it changed
    the level (so the reply can say so), else None."""
    if floor is None or floor is SafetyLevel.BLOCK_ONLY_HIGH:  # Lenient: no floor at all
        return request, None
    chosen = request.chosen | {Option.SAFETY}
    if not is_more_lenient(request.safety, than=floor):
        return dataclasses.replace(request, chosen=chosen), None
    return dataclasses.replace(request, safety=floor, chosen=chosen), floor


class Source(enum.StrEnum):
    """Which level an option's value comes from, for /settings to show."""

    MEMBER = "yours"
    SERVER = "server default"
    BUILT_IN = "bot default"


def effective_defaults(
    member: OptionDefaults, server: OptionDefaults
) -> dict[str, tuple[enum.StrEnum, Source]]:
    """What each option left out of /imagine becomes for this member, and from where (the
    same order as ``resolve_request``), keyed by OptionDefaults field name."""
    effective: dict[str, tuple[enum.StrEnum, Source]] = {}
    for field in dataclasses.fields(OptionDefaults):
        for level, source in ((member, Source.MEMBER), (server, Source.SERVER)):
            value = getattr(level, field.name)
            if value is not None:
                effective[field.name] = (value, source)
                break
        else:
            effective[field.name] = (getattr(BUILT_IN, field.name), Source.BUILT_IN)
    return effective


class PreferenceService:
    """Members' own defaults, and turning a command's options into a request with them."""

    def __init__(
        self,
        *,
        repository: MemberDefaultsStore,
        quotas: QuotaService,
        clock: Callable[[], float],
    ) -> None:
        self._repository = repository
        self._quotas = quotas
        self._clock = clock

    async def member_defaults(self, member: Member) -> OptionDefaults:
        return await self._repository.member_defaults(member.guild_id, member.user_id)

    async def server_defaults(self, guild_id: int) -> tuple[OptionDefaults, SafetyLevel | None]:
        """The server's defaults and its safety floor, from the cached policy."""
        policy = await self._quotas.policy(guild_id)
        return policy.defaults, policy.safety_floor

    async def save(self, member: Member, defaults: OptionDefaults) -> None:
        await self._repository.save_member_defaults(
            member.guild_id, member.user_id, defaults, now=self._clock()
        )

    async def request_for(
        self, member: Member, draft: Draft, given: OptionDefaults
    ) -> GenerationRequest:
        """One read of the member's row; the server's defaults come from the cached policy."""
        server, _ = await self.server_defaults(member.guild_id)
        mine = await self.member_defaults(member)
        return resolve_request(draft, given, mine, server)
