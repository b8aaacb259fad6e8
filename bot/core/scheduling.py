"""Fair scheduling: pure functions from the queue and what is running to what starts next.

Round robin at two levels. Inside a guild a member's k-th waiting job belongs to round k plus
the number of their jobs already running, so members take turns (a member with ten queued
jobs does not make the next member wait for all ten); within a round, the member served
longest ago goes first. Across guilds the same rule applies to each guild's ordered list, so
one busy guild cannot starve the others of provider slots. Remaining ties go to the older
job, which keeps a single member's jobs in FIFO order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Slot:
    """A job as the scheduler sees it: who it belongs to and which provider it needs."""

    job_id: int
    guild_id: int
    user_id: int
    provider: str


@dataclass
class ServiceHistory:
    """When each member and guild last had a job started, as a tick that only grows."""

    member_served: dict[tuple[int, int], int] = field(default_factory=dict)
    guild_served: dict[int, int] = field(default_factory=dict)
    tick: int = 0

    def record(self, slot: Slot) -> None:
        self.tick += 1
        self.member_served[(slot.guild_id, slot.user_id)] = self.tick
        self.guild_served[slot.guild_id] = self.tick


NEVER = -1


def fair_order(
    queued: Sequence[Slot], running: Sequence[Slot], history: ServiceHistory | None = None
) -> list[Slot]:
    """The queued jobs in the order they should start."""
    history = history or ServiceHistory()
    running_by_member = Counter((slot.guild_id, slot.user_id) for slot in running)
    running_by_guild = Counter(slot.guild_id for slot in running)
    seen_by_member: Counter[tuple[int, int]] = Counter()
    per_guild: dict[int, list[tuple[int, int, int, Slot]]] = defaultdict(list)
    for slot in sorted(queued, key=lambda slot: slot.job_id):
        member = (slot.guild_id, slot.user_id)
        member_round = running_by_member[member] + seen_by_member[member]
        seen_by_member[member] += 1
        served = history.member_served.get(member, NEVER)
        per_guild[slot.guild_id].append((member_round, served, slot.job_id, slot))
    ranked: list[tuple[int, int, int, Slot]] = []
    for guild_id, entries in per_guild.items():
        entries.sort(key=lambda entry: entry[:3])
        served = history.guild_served.get(guild_id, NEVER)
        for index, (_, _, job_id, slot) in enumerate(entries):
            ranked.append((running_by_guild[guild_id] + index, served, job_id, slot))
    ranked.sort(key=lambda entry: entry[:3])
    return [slot for _, _, _, slot in ranked]


def startable(
    order: Iterable[Slot],
    running: Sequence[Slot],
    *,
    max_running_per_guild: Callable[[int], int],
    max_running_per_provider: int,
    room: int | None = None,
) -> list[Slot]:
    """The jobs from ``order`` that may start now without passing a running limit; no more
    than ``room`` (the free places the limits leave), so that a long ``order`` produced lazily
    is read no further than needed."""
    per_guild = Counter(slot.guild_id for slot in running)
    per_provider = Counter(slot.provider for slot in running)
    chosen: list[Slot] = []
    for slot in order:
        if room is not None and len(chosen) >= room:
            break
        if per_guild[slot.guild_id] >= max_running_per_guild(slot.guild_id):
            continue
        if per_provider[slot.provider] >= max_running_per_provider:
            continue
        per_guild[slot.guild_id] += 1
        per_provider[slot.provider] += 1
        chosen.append(slot)
    return chosen
