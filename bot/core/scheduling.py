"""Fair scheduling: pure functions from the queue and what is running to what starts next.

Least-served first, at two levels. Inside a guild a member's k-th waiting job ranks k plus the
number of their jobs already running, so members take turns (a member with ten queued jobs
does not make the next member wait for all ten). Across guilds the same rule applies to each
guild's ranked list, so one busy guild cannot starve the others of provider slots. Ties go to
the older job, which keeps the order stable and FIFO for a single member.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Slot:
    """A job as the scheduler sees it: who it belongs to and which provider it needs."""

    job_id: int
    guild_id: int
    user_id: int
    provider: str


def fair_order(queued: Sequence[Slot], running: Sequence[Slot]) -> list[Slot]:
    """The queued jobs in the order they should start."""
    running_by_member = Counter((slot.guild_id, slot.user_id) for slot in running)
    running_by_guild = Counter(slot.guild_id for slot in running)
    seen_by_member: Counter[tuple[int, int]] = Counter()
    per_guild: dict[int, list[tuple[int, int, Slot]]] = defaultdict(list)
    for slot in sorted(queued, key=lambda slot: slot.job_id):
        member = (slot.guild_id, slot.user_id)
        member_rank = running_by_member[member] + seen_by_member[member]
        seen_by_member[member] += 1
        per_guild[slot.guild_id].append((member_rank, slot.job_id, slot))
    ranked: list[tuple[int, int, Slot]] = []
    for guild_id, entries in per_guild.items():
        entries.sort(key=lambda entry: entry[:2])
        for index, (_, job_id, slot) in enumerate(entries):
            ranked.append((running_by_guild[guild_id] + index, job_id, slot))
    ranked.sort(key=lambda entry: entry[:2])
    return [slot for _, _, slot in ranked]


def startable(
    order: Sequence[Slot],
    running: Sequence[Slot],
    *,
    max_running_per_guild: Callable[[int], int],
    max_running_per_provider: int,
) -> list[Slot]:
    """The jobs from ``order`` that may start now without passing a running limit."""
    per_guild = Counter(slot.guild_id for slot in running)
    per_provider = Counter(slot.provider for slot in running)
    chosen: list[Slot] = []
    for slot in order:
        if per_guild[slot.guild_id] >= max_running_per_guild(slot.guild_id):
            continue
        if per_provider[slot.provider] >= max_running_per_provider:
            continue
        per_guild[slot.guild_id] += 1
        per_provider[slot.provider] += 1
        chosen.append(slot)
    return chosen
