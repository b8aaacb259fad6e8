"""Credits and limits: who may spend what, per day and per month, and what admins change.

Periods are calendar days and months in UTC, so every member of a guild resets at the same
moment; Discord shows that moment in each member's own time zone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.core.config import QueueSettings, QuotaSettings, TierSettings
from bot.core.domain import AspectRatio, DiscordTarget, Member, Reservation, SafetyLevel, Tier
from bot.core.errors import (
    ChannelNotAllowed,
    InvalidRequest,
    QueueFull,
    QuotaExceeded,
    TierRestricted,
)
from bot.core.storage.protocols import (
    AuditEntry,
    AuditFields,
    CreditLimit,
    GuildPolicyRecord,
    JobStore,
    OptionDefaults,
    QuotaStore,
    UsageReport,
)

# Far above any sane setting, low enough to catch a typo such as an extra three zeros.
MAX_CREDITS_SETTING = 1_000_000
MAX_GRANT = 100_000


def day_start(now: float) -> datetime:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: float) -> datetime:
    return day_start(now).replace(day=1)


def next_month(now: float) -> datetime:
    start = month_start(now)
    return (start + timedelta(days=32)).replace(day=1)


def _limit(credits: int | None) -> int | None:
    """0 means unlimited, in the config file and in admin commands alike."""
    return credits or None


@dataclass(frozen=True, slots=True)
class Allowance:
    """Credits a member may use per period; None is unlimited."""

    daily: int | None
    monthly: int | None


@dataclass(frozen=True, slots=True)
class GuildPolicy:
    """A guild's effective rules: its overrides laid over the configured defaults."""

    default: Allowance
    guild_monthly: int | None
    exempt_role_id: int | None
    role_limits: Mapping[int, CreditLimit]
    member_limits: Mapping[int, CreditLimit]
    tier_roles: Mapping[Tier, frozenset[int]]
    max_running: int
    max_queued_per_member: int
    max_queued_per_guild: int
    # The most lenient safety level members may use here (None: no floor), and the server's
    # defaults for options a member leaves out (tier and aspect ratio only). Part of the
    # cached policy, so reading them costs nothing per command.
    safety_floor: SafetyLevel | None = None
    defaults: OptionDefaults = field(default_factory=OptionDefaults)
    # Where /imagine and the result buttons work; empty: everywhere.
    allowed_channels: frozenset[int] = frozenset()
    # Where blocked prompts and safety-blocked jobs are reported; None: not reported.
    mod_log_channel_id: int | None = None
    # Every result to its requester only (their private response, else a DM).
    private_results: bool = False


def check_channel_allowed(policy: GuildPolicy, target: DiscordTarget) -> None:
    """Refuse a request made outside the server's allowed channels (none listed: anywhere).

    A thread counts as its parent channel too: admins list the channels members see, and
    a thread started under one of them is part of it. A thread may also be listed itself.
    """
    allowed = policy.allowed_channels
    if not allowed or target.channel_id in allowed or target.parent_channel_id in allowed:
        return
    raise ChannelNotAllowed(allowed=allowed)


def resolve_policy(
    record: GuildPolicyRecord, quotas: QuotaSettings, queue: QueueSettings
) -> GuildPolicy:
    overrides = record.overrides

    def pick(override: int | None, default: int) -> int:
        return default if override is None else override

    return GuildPolicy(
        default=Allowance(
            daily=_limit(pick(overrides.member_daily_credits, quotas.member_daily_credits)),
            monthly=_limit(pick(overrides.member_monthly_credits, quotas.member_monthly_credits)),
        ),
        guild_monthly=_limit(pick(overrides.guild_monthly_credits, quotas.guild_monthly_credits)),
        exempt_role_id=overrides.exempt_role_id,
        role_limits=record.role_limits,
        member_limits=record.member_limits,
        tier_roles=record.tier_roles,
        max_running=pick(overrides.max_running_per_guild, queue.max_running_per_guild),
        max_queued_per_member=pick(overrides.max_queued_per_member, queue.max_queued_per_member),
        max_queued_per_guild=pick(overrides.max_queued_per_guild, queue.max_queued_per_guild),
        safety_floor=None
        if overrides.safety_floor is None
        else SafetyLevel(overrides.safety_floor),
        defaults=OptionDefaults(
            tier=None if overrides.default_tier is None else Tier(overrides.default_tier),
            aspect_ratio=(
                None
                if overrides.default_aspect_ratio is None
                else AspectRatio(overrides.default_aspect_ratio)
            ),
        ),
        allowed_channels=record.allowed_channels,
        mod_log_channel_id=overrides.mod_log_channel_id,
        private_results=bool(overrides.private_results),
    )


def allowance_for(policy: GuildPolicy, member: Member) -> Allowance:
    """A member override wins; otherwise the most generous of the member's roles; otherwise
    the guild default. The exempt role lifts member limits (the guild budget still holds)."""
    if policy.exempt_role_id is not None and policy.exempt_role_id in member.role_ids:
        return Allowance(None, None)
    own = policy.member_limits.get(member.user_id)
    if own is not None:
        return Allowance(_limit(own.daily), _limit(own.monthly))
    roles = [policy.role_limits[role] for role in member.role_ids if role in policy.role_limits]
    if not roles:
        return policy.default
    return Allowance(
        daily=_most_generous([_limit(limit.daily) for limit in roles]),
        monthly=_most_generous([_limit(limit.monthly) for limit in roles]),
    )


def _most_generous(limits: Collection[int | None]) -> int | None:
    return None if None in limits else max(limit for limit in limits if limit is not None)


def check_tier_open(policy: GuildPolicy, member: Member, tier: Tier) -> None:
    roles = policy.tier_roles.get(tier)
    if roles and not roles & member.role_ids:
        raise TierRestricted(
            f"The {tier.value} tier is open only to members with certain roles on this server. "
            "Try another tier.",
            role_ids=roles,
        )


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    used: int
    limit: int | None  # including one-off grants
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """What /quota shows: per-period usage, the guild budget and each tier's price."""

    day: PeriodUsage
    month: PeriodUsage
    guild_month: PeriodUsage
    tier_credits: Mapping[Tier, int]
    closed_tiers: frozenset[Tier]


class QuotaService:
    """Every change to a guild's settings goes through here, which is what lets it keep each
    guild's policy in memory: it is read on every reservation and every dispatch, and changed
    only by an admin. (That holds for one bot process; several processes sharing a database
    would each need to hear of the others' changes.)"""

    def __init__(
        self,
        *,
        repository: QuotaStore,
        jobs: JobStore,
        tiers: Mapping[Tier, TierSettings],
        quotas: QuotaSettings,
        queue: QueueSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._jobs = jobs
        self._tiers = tiers
        self._quotas = quotas
        self._queue = queue
        self._clock = clock
        self._policies: dict[int, GuildPolicy] = {}
        # The read of a guild's policy in progress, if any; a settings change drops it from
        # here, so that what it read is not cached (it may predate the change).
        self._reading: dict[int, asyncio.Task[GuildPolicy]] = {}
        self._listeners: list[Callable[[int], None]] = []

    def on_policy_change(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(guild_id)`` after every change of a guild's settings (the dispatcher
        looks again: a raised running limit frees places at once)."""
        self._listeners.append(listener)

    def credits_for(self, tier: Tier) -> int:
        return self._tiers[tier].credits

    async def policy(self, guild_id: int) -> GuildPolicy:
        """The guild's effective rules, read from storage only when not in memory.

        A burst of commands from a guild not yet cached waits for one read, not one each.
        """
        cached = self._policies.get(guild_id)
        if cached is not None:
            return cached
        reading = self._reading.get(guild_id)
        if reading is None:
            reading = asyncio.create_task(self._read_policy(guild_id))
            self._reading[guild_id] = reading
        # Shielded: a caller that gives up does not cancel the read others are waiting for.
        return await asyncio.shield(reading)

    async def _read_policy(self, guild_id: int) -> GuildPolicy:
        try:
            record = await self._repository.policy(guild_id)
            policy = resolve_policy(record, self._quotas, self._queue)
            if self._reading.get(guild_id) is asyncio.current_task():
                self._policies[guild_id] = policy
            return policy
        finally:
            if self._reading.get(guild_id) is asyncio.current_task():
                del self._reading[guild_id]

    @asynccontextmanager
    async def _changing_policy(self, guild_id: int) -> AsyncIterator[None]:
        """Around a settings change: the cached policy, and any read of it in progress, are
        forgotten once the change is over, whether it took effect or failed (a read on the
        change's own connection may have seen it uncommitted)."""
        try:
            yield
        finally:
            self._policies.pop(guild_id, None)
            self._reading.pop(guild_id, None)
            for listener in self._listeners:
                listener(guild_id)

    async def max_running(self, guild_id: int) -> int:
        """How many of the guild's jobs may run at once."""
        return (await self.policy(guild_id)).max_running

    async def reservation(
        self, member: Member, tier: Tier, *, images_per_job: int = 1, jobs: int = 1
    ) -> Reservation:
        """The limits a member's new jobs must fit together; raises if the tier is closed.

        Only the guild's policy is read here (from memory once cached): the member's grants
        and last reset are per member and change at any time, so the job store reads them in
        the reservation's own statement, and usage counts from the reset when it is later
        than the period start.
        """
        policy = await self.policy(member.guild_id)
        check_tier_open(policy, member, tier)
        allowance = allowance_for(policy, member)
        now = self._clock()
        day, month = day_start(now).timestamp(), month_start(now).timestamp()
        return Reservation(
            credits=self.credits_for(tier) * images_per_job,
            jobs=jobs,
            member_daily=allowance.daily,
            member_monthly=allowance.monthly,
            guild_monthly=policy.guild_monthly,
            max_queued_per_member=policy.max_queued_per_member,
            max_queued_per_guild=policy.max_queued_per_guild,
            day_start=day,
            month_start=month,
            member_counted_since_day=day,
            member_counted_since_month=month,
        )

    async def refusal(self, member: Member, reservation: Reservation) -> InvalidRequest:
        """Why a reservation was refused, worded for the member."""
        queued = await self._jobs.queued_count(guild_id=member.guild_id, user_id=member.user_id)
        limit = reservation.max_queued_per_member
        if limit is not None and queued + reservation.jobs > limit:
            return QueueFull(
                f"You already have {queued} images waiting (the limit is {limit}). Wait for "
                "one to finish, or cancel one with /queue."
            )
        limit = reservation.max_queued_per_guild
        if limit is not None and (
            await self._jobs.queued_count(guild_id=member.guild_id, user_id=None) + reservation.jobs
            > limit
        ):
            return QueueFull(
                f"This server's queue is full ({limit} images waiting). Please try again in a "
                "few minutes."
            )
        status = await self.status(member)
        needed = reservation.credits * reservation.jobs
        for usage, what in ((status.day, "daily"), (status.month, "monthly")):
            if usage.remaining is not None and usage.remaining < needed:
                return QuotaExceeded(
                    f"This needs {needed} credit(s) and you have {usage.remaining} of your "
                    f"{usage.limit} {what} credits left.",
                    resets_at=usage.resets_at,
                )
        return QuotaExceeded(
            f"This server has used its monthly budget of {status.guild_month.limit} credits.",
            resets_at=status.guild_month.resets_at,
        )

    async def status(self, member: Member) -> QuotaStatus:
        policy = await self.policy(member.guild_id)
        allowance = allowance_for(policy, member)
        now = self._clock()
        day, month = day_start(now), month_start(now)
        reset_at = await self._repository.member_reset_at(member.guild_id, member.user_id) or 0.0

        async def period(limit: int | None, start: datetime, resets_at: datetime) -> PeriodUsage:
            since = max(start.timestamp(), reset_at)
            used = await self._jobs.usage(
                guild_id=member.guild_id, user_id=member.user_id, since=since
            )
            granted = await self._repository.granted(
                member.guild_id, member.user_id, since=start.timestamp()
            )
            return PeriodUsage(used, None if limit is None else limit + granted, resets_at)

        guild_used = await self._jobs.usage(
            guild_id=member.guild_id, user_id=None, since=month.timestamp()
        )
        closed = frozenset(
            tier
            for tier, roles in policy.tier_roles.items()
            if roles and not roles & member.role_ids
        )
        return QuotaStatus(
            day=await period(allowance.daily, day, day + timedelta(days=1)),
            month=await period(allowance.monthly, month, next_month(now)),
            guild_month=PeriodUsage(guild_used, policy.guild_monthly, next_month(now)),
            tier_credits={tier: settings.credits for tier, settings in self._tiers.items()},
            closed_tiers=closed,
        )

    # ------------------------------------------------------------------ admin

    def _audit(self, actor_id: int, action: str, **details: object) -> AuditFields:
        return AuditFields(actor_id=actor_id, action=action, details=details, now=self._clock())

    async def set_default_limits(
        self, guild_id: int, actor_id: int, *, daily: int | None, monthly: int | None
    ) -> None:
        """Set the guild's per-member default; None restores the configured default."""
        for value in (daily, monthly):
            _check_credits(value)
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"member_daily_credits": daily, "member_monthly_credits": monthly},
                audit=self._audit(actor_id, "default-limits", daily=daily, monthly=monthly),
            )

    async def set_budget(self, guild_id: int, actor_id: int, *, monthly: int | None) -> None:
        _check_credits(monthly)
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"guild_monthly_credits": monthly},
                audit=self._audit(actor_id, "budget", monthly=monthly),
            )

    async def set_exempt_role(self, guild_id: int, actor_id: int, role_id: int | None) -> None:
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"exempt_role_id": role_id},
                audit=self._audit(actor_id, "exempt-role", role_id=role_id),
            )

    async def set_queue_limits(
        self,
        guild_id: int,
        actor_id: int,
        *,
        max_running: int | None,
        max_queued_per_member: int | None,
        max_queued_per_guild: int | None,
    ) -> None:
        """Tighten this guild's queue; a guild may not go beyond the operator's limits."""
        ceilings = (
            (max_running, self._queue.max_running_per_guild, "running jobs"),
            (max_queued_per_member, self._queue.max_queued_per_member, "queued jobs per member"),
            (max_queued_per_guild, self._queue.max_queued_per_guild, "queued jobs"),
        )
        for value, ceiling, what in ceilings:
            if value is not None and not 1 <= value <= ceiling:
                raise InvalidRequest(
                    f"The limit for {what} must be between 1 and {ceiling} (the bot's maximum)."
                )
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {
                    "max_running_per_guild": max_running,
                    "max_queued_per_member": max_queued_per_member,
                    "max_queued_per_guild": max_queued_per_guild,
                },
                audit=self._audit(
                    actor_id,
                    "queue-limits",
                    max_running=max_running,
                    max_queued_per_member=max_queued_per_member,
                    max_queued_per_guild=max_queued_per_guild,
                ),
            )

    async def set_safety_floor(
        self, guild_id: int, actor_id: int, level: SafetyLevel | None
    ) -> None:
        """The most lenient level members may use; None lifts the floor. It applies to every
        job submitted from now on, the result buttons' too."""
        value = None if level is None else level.value
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"safety_floor": value},
                audit=self._audit(actor_id, "safety-floor", level=value),
            )

    async def set_server_defaults(
        self, guild_id: int, actor_id: int, *, tier: Tier | None, aspect_ratio: AspectRatio | None
    ) -> None:
        """Both at once, as the command sets them: one left out (None) is cleared."""
        tier_value = None if tier is None else tier.value
        ratio_value = None if aspect_ratio is None else aspect_ratio.value
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"default_tier": tier_value, "default_aspect_ratio": ratio_value},
                audit=self._audit(
                    actor_id, "server-defaults", tier=tier_value, aspect_ratio=ratio_value
                ),
            )

    async def set_mod_log(self, guild_id: int, actor_id: int, channel_id: int | None) -> None:
        """Where blocked prompts and safety-blocked jobs are reported; None stops reporting.
        Part of the cached policy, so a report costs no read of its own."""
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"mod_log_channel_id": channel_id},
                audit=self._audit(actor_id, "mod-log", channel_id=channel_id),
            )

    async def set_private_results(self, guild_id: int, actor_id: int, private: bool) -> None:
        """Whether results go to their requester only rather than the channel."""
        async with self._changing_policy(guild_id):
            await self._repository.update_overrides(
                guild_id,
                {"private_results": int(private)},
                audit=self._audit(actor_id, "results", private=private),
            )

    async def results_private(self, guild_id: int) -> bool:
        """Whether the guild shows results to their requesters only (cached policy)."""
        return (await self.policy(guild_id)).private_results

    async def set_role_limit(
        self, guild_id: int, actor_id: int, role_id: int, limit: CreditLimit | None
    ) -> None:
        if limit is not None:
            _check_credits(limit.daily)
            _check_credits(limit.monthly)
        async with self._changing_policy(guild_id):
            await self._repository.set_limit(
                guild_id,
                "role",
                role_id,
                limit,
                audit=self._audit(actor_id, "role-limit", role_id=role_id, limit=_describe(limit)),
            )

    async def set_member_limit(
        self, guild_id: int, actor_id: int, user_id: int, limit: CreditLimit | None
    ) -> None:
        if limit is not None:
            _check_credits(limit.daily)
            _check_credits(limit.monthly)
        async with self._changing_policy(guild_id):
            await self._repository.set_limit(
                guild_id,
                "member",
                user_id,
                limit,
                audit=self._audit(
                    actor_id, "member-limit", user_id=user_id, limit=_describe(limit)
                ),
            )

    async def set_tier_roles(
        self, guild_id: int, actor_id: int, tier: Tier, role_ids: frozenset[int]
    ) -> None:
        async with self._changing_policy(guild_id):
            await self._repository.set_tier_roles(
                guild_id,
                tier,
                role_ids,
                audit=self._audit(
                    actor_id, "tier-roles", tier=tier.value, role_ids=sorted(role_ids)
                ),
            )

    async def set_channel_allowed(
        self, guild_id: int, actor_id: int, channel_id: int, *, allowed: bool
    ) -> bool:
        """List (or unlist) a channel where /imagine and the result buttons work; the first
        channel listed closes every other one. False when nothing changed (already listed, or
        not listed): then nothing is audited."""
        async with self._changing_policy(guild_id):
            return await self._repository.set_channel_allowed(
                guild_id,
                channel_id,
                allowed,
                audit=self._audit(
                    actor_id,
                    "channels-add" if allowed else "channels-remove",
                    channel_id=channel_id,
                ),
            )

    async def grant(self, guild_id: int, actor_id: int, user_id: int, credits: int) -> None:
        """Grants (and resets) are not part of the cached policy: a reservation reads them in
        its own statement, so they count from the next one on."""
        if not 1 <= credits <= MAX_GRANT:
            raise InvalidRequest(f"A grant must be between 1 and {MAX_GRANT} credits.")
        await self._repository.grant(
            guild_id,
            user_id,
            credits,
            audit=self._audit(actor_id, "grant", user_id=user_id, credits=credits),
        )

    async def reset_member(self, guild_id: int, actor_id: int, user_id: int) -> None:
        await self._repository.reset_member(
            guild_id, user_id, audit=self._audit(actor_id, "reset", user_id=user_id)
        )

    async def audit_trail(self, guild_id: int, *, limit: int = 15) -> list[AuditEntry]:
        return await self._repository.audit_trail(guild_id, limit=limit)

    async def usage_report(self, guild_id: int, *, monthly: bool) -> UsageReport:
        now = self._clock()
        since = month_start(now) if monthly else day_start(now)
        return await self._repository.usage_report(guild_id, since=since.timestamp(), top=10)


def _check_credits(value: int | None) -> None:
    if value is not None and not 0 <= value <= MAX_CREDITS_SETTING:
        raise InvalidRequest(
            f"Credit limits must be between 0 (unlimited) and {MAX_CREDITS_SETTING:,}."
        )


def _describe(limit: CreditLimit | None) -> dict[str, int] | None:
    return None if limit is None else {"daily": limit.daily, "monthly": limit.monthly}
