"""What the hot path costs in round trips to SQLite, counted on a real connection, and the
guild policy cache that keeps a reservation down to one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import aiosqlite
import pytest

from bot.core.config import Settings
from bot.core.domain import Member, Tier
from bot.core.errors import TierRestricted
from bot.core.quotas import QuotaService
from bot.core.storage.jobs import JobRepository
from bot.core.storage.protocols import CreditLimit, GuildPolicyRecord
from bot.core.storage.quotas import QuotaRepository
from tests.conftest import move_to_submitted, stored_job
from tests.counting import counting_round_trips
from tests.factories import GUILD_ID, USER_ID, ManualClock, a_request, a_target
from tests.services import quota_service

ADMIN = 42
ROLE, OTHER_ROLE = 501, 502
MEMBER = Member(guild_id=GUILD_ID, user_id=USER_ID, role_ids=frozenset({ROLE}))
_tokens = itertools.count()


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate({"quotas": {"member_daily_credits": 5}})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def quotas(
    connection: aiosqlite.Connection, settings: Settings, clock: ManualClock
) -> QuotaService:
    return quota_service(connection, settings, clock=clock)


async def reserve(
    quotas: QuotaService, repository: JobRepository, clock: ManualClock, tier: Tier = Tier.FAST
) -> bool:
    """What /imagine does for credits: the limits, then the one conditional INSERT."""
    reservation = await quotas.reservation(MEMBER, tier)
    jobs = await repository.create(
        a_request(tier=tier),
        a_target(),
        callback_token=f"token-{next(_tokens)}",
        now=clock.now,
        reservation=reservation,
    )
    return bool(jobs)


async def a_guild_with_every_kind_of_setting(quotas: QuotaService) -> None:
    """Rows in each table a cold policy read and a reservation look at."""
    await quotas.set_default_limits(GUILD_ID, ADMIN, daily=8, monthly=80)
    await quotas.set_role_limit(GUILD_ID, ADMIN, ROLE, CreditLimit(daily=9, monthly=90))
    await quotas.set_tier_roles(GUILD_ID, ADMIN, Tier.ULTRA, frozenset({OTHER_ROLE}))
    await quotas.grant(GUILD_ID, ADMIN, USER_ID, 2)
    await quotas.reset_member(GUILD_ID, ADMIN, USER_ID)


async def test_counting_sees_every_trip_to_sqlites_thread(
    connection: aiosqlite.Connection,
) -> None:
    """The counter itself: one execute_fetchall is one trip; a cursor costs one per call."""
    with counting_round_trips(connection) as fetched_at_once:
        await connection.execute_fetchall("SELECT 1")
    with counting_round_trips(connection) as by_cursor:
        async with connection.execute("SELECT 1") as cursor:
            await cursor.fetchone()

    assert fetched_at_once.count == 1
    assert by_cursor.calls == ["execute", "fetchone", "close"]


async def test_a_reservation_with_the_policy_not_cached_costs_two_round_trips(
    connection: aiosqlite.Connection, settings: Settings, clock: ManualClock
) -> None:
    await a_guild_with_every_kind_of_setting(quota_service(connection, settings, clock=clock))
    cold = quota_service(connection, settings, clock=clock)

    with counting_round_trips(connection) as trips:
        assert await reserve(cold, JobRepository(connection), clock)

    assert trips.count == 2, trips.calls  # the policy's snapshot, the reservation (budget: 4)


async def test_a_reservation_with_the_guilds_policy_cached_costs_one_round_trip(
    connection: aiosqlite.Connection, quotas: QuotaService, clock: ManualClock
) -> None:
    await a_guild_with_every_kind_of_setting(quotas)
    repository = JobRepository(connection)
    assert await reserve(quotas, repository, clock)

    with counting_round_trips(connection) as trips:
        assert await reserve(quotas, repository, clock)

    assert trips.count == 1, trips.calls


async def test_the_dispatchers_policy_read_costs_nothing_once_cached(
    connection: aiosqlite.Connection, quotas: QuotaService
) -> None:
    await quotas.policy(GUILD_ID)

    with counting_round_trips(connection) as trips:
        await quotas.policy(GUILD_ID)

    assert trips.count == 0, trips.calls


async def test_a_burst_from_a_guild_not_yet_cached_reads_its_policy_once(
    connection: aiosqlite.Connection, quotas: QuotaService
) -> None:
    with counting_round_trips(connection) as trips:
        policies = await asyncio.gather(*(quotas.policy(GUILD_ID) for _ in range(20)))

    assert all(policy == policies[0] for policy in policies)
    assert trips.calls == ["in_transaction"]  # settings, limits and tier roles, read together


class HeldPolicyReads(QuotaRepository):
    """The real repository, with each policy read held after it has read, until released."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        super().__init__(connection)
        self.has_read = asyncio.Event()
        self.release = asyncio.Event()

    async def policy(self, guild_id: int) -> GuildPolicyRecord:
        record = await super().policy(guild_id)
        self.has_read.set()
        await self.release.wait()
        return record


async def test_a_policy_read_that_overlaps_an_admin_change_is_not_cached(
    connection: aiosqlite.Connection, settings: Settings, clock: ManualClock
) -> None:
    repository = HeldPolicyReads(connection)
    quotas = QuotaService(
        repository=repository,
        jobs=JobRepository(connection),
        tiers=settings.tiers,
        quotas=settings.quotas,
        queue=settings.queue,
        clock=clock,
    )
    read_before_the_change = asyncio.create_task(quotas.policy(GUILD_ID))
    await repository.has_read.wait()

    await quotas.set_budget(GUILD_ID, ADMIN, monthly=7)
    repository.release.set()

    assert (await read_before_the_change).guild_monthly is None  # what it read was current
    assert (await quotas.policy(GUILD_ID)).guild_monthly == 7


Change = Callable[[QuotaService], Awaitable[None]]
REFUSING_CHANGES: dict[str, Change] = {
    "default limits": lambda q: q.set_default_limits(GUILD_ID, ADMIN, daily=1, monthly=None),
    "budget": lambda q: q.set_budget(GUILD_ID, ADMIN, monthly=1),
    "queue limits": lambda q: q.set_queue_limits(
        GUILD_ID, ADMIN, max_running=None, max_queued_per_member=1, max_queued_per_guild=None
    ),
    "role limit": lambda q: q.set_role_limit(GUILD_ID, ADMIN, ROLE, CreditLimit(1, 10)),
    "member limit": lambda q: q.set_member_limit(GUILD_ID, ADMIN, USER_ID, CreditLimit(1, 10)),
}


@pytest.mark.parametrize("change", REFUSING_CHANGES.values(), ids=REFUSING_CHANGES.keys())
async def test_an_admin_change_is_seen_by_the_next_reservation(
    connection: aiosqlite.Connection, quotas: QuotaService, clock: ManualClock, change: Change
) -> None:
    repository = JobRepository(connection)
    assert await reserve(quotas, repository, clock)  # the policy is cached now

    await change(quotas)

    assert not await reserve(quotas, repository, clock)


async def test_closing_a_tier_is_seen_by_the_next_reservation(
    connection: aiosqlite.Connection, quotas: QuotaService, clock: ManualClock
) -> None:
    repository = JobRepository(connection)
    assert await reserve(quotas, repository, clock, Tier.ULTRA)

    await quotas.set_tier_roles(GUILD_ID, ADMIN, Tier.ULTRA, frozenset({OTHER_ROLE}))

    with pytest.raises(TierRestricted):
        await reserve(quotas, repository, clock, Tier.ULTRA)


async def test_an_exempt_role_is_seen_by_the_next_reservation(
    connection: aiosqlite.Connection, quotas: QuotaService, clock: ManualClock
) -> None:
    repository = JobRepository(connection)
    await quotas.set_member_limit(GUILD_ID, ADMIN, USER_ID, CreditLimit(1, 10))
    assert await reserve(quotas, repository, clock)
    assert not await reserve(quotas, repository, clock)  # refused with the policy cached

    await quotas.set_exempt_role(GUILD_ID, ADMIN, ROLE)

    assert await reserve(quotas, repository, clock)


async def test_a_transition_costs_one_round_trip(
    connection: aiosqlite.Connection, repository: JobRepository
) -> None:
    job = await stored_job(repository)
    await move_to_submitted(repository, job.id)

    with counting_round_trips(connection) as trips:
        assert await repository.mark_succeeded(job.id, image_paths=[], now=4)

    assert trips.count == 1, trips.calls


async def test_a_job_costs_five_round_trips_in_storage_from_queued_to_delivered(
    connection: aiosqlite.Connection, repository: JobRepository
) -> None:
    """Create, submitting, submitted, succeeded, delivered: each is one statement that hands
    back the row, so no step needs a read of its own."""
    with counting_round_trips(connection) as trips:
        job = await stored_job(repository)
        await move_to_submitted(repository, job.id)
        assert await repository.mark_succeeded(job.id, image_paths=[], now=4)
        assert await repository.mark_delivered(job.id, now=5)

    assert trips.count == 5, trips.calls
