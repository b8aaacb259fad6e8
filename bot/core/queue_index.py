"""The queue in memory: who waits and who runs, per guild and member, in the fair order.

The jobs table stays the truth. This index mirrors its waiting and running jobs so that the
dispatcher and queue positions never read the table or sort the whole queue: it is rebuilt
from the table at start and told of every change that adds, starts, ends or drops a job.

Its order is exactly ``scheduling.fair_order`` (a test compares the two after random changes).
That order gives a member's k-th waiting job the round ``running + k`` and ranks a guild's
jobs by (round, member served, job id); across guilds a job's key is (guild running + its rank
in the guild, guild served, job id). Every member's jobs fill consecutive rounds, so counting
the jobs ahead of one is arithmetic per member and per guild, never a walk over the jobs.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from bot.core.scheduling import NEVER, ServiceHistory, Slot


@dataclass
class _Member:
    waiting: list[int] = field(default_factory=list)  # job ids, ascending
    running: int = 0


@dataclass
class _Guild:
    members: dict[int, _Member] = field(default_factory=dict)
    waiting: int = 0
    running: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """A waiting job as the order yields it."""

    job_id: int
    guild_id: int
    user_id: int


class QueueIndex:
    def __init__(self, history: ServiceHistory | None = None) -> None:
        self.history = history or ServiceHistory()
        self._guilds: dict[int, _Guild] = {}
        self._waiting: dict[int, tuple[int, int]] = {}
        self._running: dict[int, tuple[int, int]] = {}

    # ----------------------------------------------------------------- changes

    def add(self, job_id: int, guild_id: int, user_id: int) -> None:
        """A job joins the queue (submitted, or found queued at start)."""
        if job_id in self._waiting or job_id in self._running:
            return
        guild = self._guilds.setdefault(guild_id, _Guild())
        bisect.insort(guild.members.setdefault(user_id, _Member()).waiting, job_id)
        guild.waiting += 1
        self._waiting[job_id] = (guild_id, user_id)

    def drop(self, job_id: int) -> bool:
        """A waiting job leaves the queue without starting (canceled, expired)."""
        where = self._waiting.pop(job_id, None)
        if where is None:
            return False
        guild, member = self._member(*where)
        member.waiting.remove(job_id)
        guild.waiting -= 1
        self._forget_if_idle(*where)
        return True

    def start(self, slot: Slot) -> None:
        """A waiting job starts: it runs now, and its member and guild were just served."""
        self.drop(slot.job_id)
        self.run(slot)
        self.history.record(slot)

    def run(self, slot: Slot) -> None:
        """A job holds a running place without being started from the queue (resumed after a
        restart, or delivering a failure)."""
        if slot.job_id in self._running:
            return
        guild = self._guilds.setdefault(slot.guild_id, _Guild())
        guild.members.setdefault(slot.user_id, _Member()).running += 1
        guild.running += 1
        self._running[slot.job_id] = (slot.guild_id, slot.user_id)

    def finish(self, job_id: int) -> None:
        """A running job's task ended: its place is free."""
        where = self._running.pop(job_id, None)
        if where is None:
            return
        guild, member = self._member(*where)
        member.running -= 1
        guild.running -= 1
        self._forget_if_idle(*where)

    # ----------------------------------------------------------------- questions

    def is_waiting(self, job_id: int) -> bool:
        return job_id in self._waiting

    def is_running(self, job_id: int) -> bool:
        return job_id in self._running

    def waiting_count(self) -> int:
        return len(self._waiting)

    def running_in(self, guild_id: int) -> int:
        guild = self._guilds.get(guild_id)
        return 0 if guild is None else guild.running

    def position(self, job_id: int) -> int | None:
        """1 for the next job to start; None when the job is not waiting.

        Costs one step per member of the job's guild and per guild with waiting jobs,
        whatever the number of jobs queued.
        """
        where = self._waiting.get(job_id)
        if where is None:
            return None
        guild_id, user_id = where
        guild, member = self._member(guild_id, user_id)
        job_round = member.running + bisect.bisect_left(member.waiting, job_id)
        rank = self._ahead_in_guild(
            guild_id, guild, job_round, (self._served(guild_id, user_id), job_id)
        )
        key = guild.running + rank
        served = self.history.guild_served.get(guild_id, NEVER)
        ahead = rank
        for other_id, other in self._guilds.items():
            if other_id == guild_id or not other.waiting:
                continue
            before = key - other.running  # the other guild's jobs ranked below this are ahead
            ahead += min(other.waiting, max(0, before))
            if 0 <= before < other.waiting:
                other_served = self.history.guild_served.get(other_id, NEVER)
                # Distinct served ticks decide alone; only two never-served guilds tie.
                if other_served < served or (
                    other_served == served and self._at_rank(other_id, other, before) < job_id
                ):
                    ahead += 1
        return ahead + 1

    def waiting_guilds(self) -> list[int]:
        return [guild_id for guild_id, guild in self._guilds.items() if guild.waiting]

    def order(self, skip: Collection[int] = ()) -> Iterator[Entry]:
        """The waiting jobs in the order they should start, leaving out the guilds in
        ``skip``; produced lazily, so the dispatcher takes only as many as it can start. Do not
        change the index while iterating."""
        heap = []
        for guild_id, guild in self._guilds.items():
            if guild_id in skip:
                continue
            entries = self._guild_order(guild_id, guild)
            first = next(entries, None)
            if first is not None:
                served = self.history.guild_served.get(guild_id, NEVER)
                heap.append((guild.running, served, first.job_id, 0, first, entries))
        heapq.heapify(heap)
        while heap:
            key, served, _, rank, entry, entries = heapq.heappop(heap)
            yield entry
            following = next(entries, None)
            if following is not None:
                heapq.heappush(
                    heap, (key + 1, served, following.job_id, rank + 1, following, entries)
                )

    # ----------------------------------------------------------------- helpers

    def _member(self, guild_id: int, user_id: int) -> tuple[_Guild, _Member]:
        guild = self._guilds[guild_id]
        return guild, guild.members[user_id]

    def _forget_if_idle(self, guild_id: int, user_id: int) -> None:
        guild, member = self._member(guild_id, user_id)
        if not member.waiting and not member.running:
            del guild.members[user_id]
        if not guild.members:
            del self._guilds[guild_id]

    def _served(self, guild_id: int, user_id: int) -> int:
        return self.history.member_served.get((guild_id, user_id), NEVER)

    def _ahead_in_guild(
        self, guild_id: int, guild: _Guild, job_round: int, tie: tuple[int, int]
    ) -> int:
        """How many of the guild's waiting jobs rank before a job of round ``job_round``
        whose (member served, job id) is ``tie``."""
        ahead = 0
        for user_id, member in guild.members.items():
            index = job_round - member.running  # this member's job in that round, if any
            ahead += min(len(member.waiting), max(0, index))
            if (
                0 <= index < len(member.waiting)
                and (self._served(guild_id, user_id), member.waiting[index]) < tie
            ):
                ahead += 1
        return ahead

    def _at_rank(self, guild_id: int, guild: _Guild, rank: int) -> int:
        """The id of the guild's job at ``rank`` (0-based) in its own order."""

        def below(job_round: int) -> int:  # jobs of rounds before job_round
            return sum(
                min(len(member.waiting), max(0, job_round - member.running))
                for member in guild.members.values()
            )

        low, high = 0, max(m.running + len(m.waiting) for m in guild.members.values())
        while low < high:  # the last round whose predecessors number at most ``rank``
            middle = (low + high + 1) // 2
            if below(middle) <= rank:
                low = middle
            else:
                high = middle - 1
        in_round = sorted(
            (self._served(guild_id, user_id), member.waiting[low - member.running])
            for user_id, member in guild.members.items()
            if 0 <= low - member.running < len(member.waiting)
        )
        return in_round[rank - below(low)][1]

    def _guild_order(self, guild_id: int, guild: _Guild) -> Iterator[Entry]:
        heap = [
            (member.running, self._served(guild_id, user_id), member.waiting[0], user_id, 0)
            for user_id, member in guild.members.items()
            if member.waiting
        ]
        heapq.heapify(heap)
        while heap:
            job_round, served, job_id, user_id, index = heapq.heappop(heap)
            yield Entry(job_id, guild_id, user_id)
            waiting = guild.members[user_id].waiting
            if index + 1 < len(waiting):
                heapq.heappush(
                    heap, (job_round + 1, served, waiting[index + 1], user_id, index + 1)
                )
