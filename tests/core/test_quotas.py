"""Credits: who may spend what, refusals that explain themselves, exact under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from bot.core.config import Settings
from bot.core.domain import Charge, Job, Member, Tier
from bot.core.errors import InvalidRequest, QueueFull, QuotaExceeded, TierRestricted
from bot.core.images import ImageStore
from bot.core.jobs import JobService
from bot.core.providers.http import HttpClient
from bot.core.quotas import (
    Allowance,
    GuildPolicy,
    QuotaService,
    allowance_for,
    day_start,
    next_month,
)
from bot.core.storage.jobs import JobRepository
from bot.core.storage.quotas import CreditLimit
from tests.conftest import move_to_submitted, stored_job, table_snapshot
from tests.factories import (
    A_MEMBER,
    GUILD_ID,
    USER_ID,
    ManualClock,
    a_replicate_provider,
    a_request,
    a_reservation,
    a_target,
)
from tests.fakes.fake_replicate import FakeReplicate
from tests.fakes.recording_publisher import RecordingPublisher
from tests.services import job_service, quota_service

ADMIN = 42
ROLE_GOLD, ROLE_SILVER, ROLE_EXEMPT = 501, 502, 503
OTHER_USER = USER_ID + 1


def a_policy(**overrides: Any) -> GuildPolicy:
    fields: dict[str, Any] = {
        "default": Allowance(10, 100),
        "guild_monthly": None,
        "exempt_role_id": None,
        "role_limits": {},
        "member_limits": {},
        "tier_roles": {},
        "max_running": 2,
        "max_queued_per_member": 5,
        "max_queued_per_guild": 50,
    }
    fields.update(overrides)
    return GuildPolicy(**fields)


def member(*roles: int, user_id: int = USER_ID) -> Member:
    return Member(guild_id=GUILD_ID, user_id=user_id, role_ids=frozenset(roles))


# ---------------------------------------------------------------------- pure rules


def test_members_without_overrides_get_the_guild_default() -> None:
    assert allowance_for(a_policy(), member()) == Allowance(10, 100)


def test_the_most_generous_role_wins_per_period() -> None:
    policy = a_policy(
        role_limits={ROLE_GOLD: CreditLimit(5, 500), ROLE_SILVER: CreditLimit(20, 50)}
    )
    assert allowance_for(policy, member(ROLE_GOLD, ROLE_SILVER)) == Allowance(20, 500)


def test_a_role_with_zero_means_unlimited_and_beats_any_number() -> None:
    policy = a_policy(role_limits={ROLE_GOLD: CreditLimit(0, 5), ROLE_SILVER: CreditLimit(9, 9)})
    assert allowance_for(policy, member(ROLE_GOLD, ROLE_SILVER)) == Allowance(None, 9)


def test_a_member_override_beats_their_roles() -> None:
    policy = a_policy(
        role_limits={ROLE_GOLD: CreditLimit(50, 500)}, member_limits={USER_ID: CreditLimit(1, 2)}
    )
    assert allowance_for(policy, member(ROLE_GOLD)) == Allowance(1, 2)


def test_the_exempt_role_lifts_member_limits() -> None:
    policy = a_policy(exempt_role_id=ROLE_EXEMPT, member_limits={USER_ID: CreditLimit(1, 2)})
    assert allowance_for(policy, member(ROLE_EXEMPT)) == Allowance(None, None)


def test_periods_are_utc_calendar_days_and_months() -> None:
    moment = 1_798_675_200.0 + 3600 * 13  # 2026-12-31 13:00 UTC
    assert day_start(moment).isoformat() == "2026-12-31T00:00:00+00:00"
    assert next_month(moment).isoformat() == "2027-01-01T00:00:00+00:00"


# ---------------------------------------------------------------------- with the database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate(
        {
            "quotas": {"member_daily_credits": 5, "member_monthly_credits": 50},
            "queue": {"max_queued_per_member": 1000, "max_queued_per_guild": 1000},
        }
    )


@pytest.fixture
def jobs(
    connection: aiosqlite.Connection,
    settings: Settings,
    clock: ManualClock,
    tmp_path: Path,
    fake_replicate: FakeReplicate,
    http: HttpClient,
) -> JobService:
    """A job service that is never started: submitted jobs stay queued."""
    return job_service(
        connection,
        providers={"replicate": a_replicate_provider(fake_replicate, http)},
        publisher=RecordingPublisher(),
        images=ImageStore(tmp_path),
        settings=settings,
        public_url=None,
        clock=clock,
    )


@pytest.fixture
def quotas(
    connection: aiosqlite.Connection, settings: Settings, clock: ManualClock
) -> QuotaService:
    return quota_service(connection, settings, clock=clock)


async def submit(jobs: JobService, who: Member = A_MEMBER, tier: Tier = Tier.FAST) -> int:
    job = (await jobs.submit(a_request(tier=tier), a_target(user_id=who.user_id), who)).jobs[0]
    return job.id


async def test_simultaneous_requests_never_overspend(jobs: JobService) -> None:
    """100 requests at once from a member with 5 credits left: exactly 5 jobs."""
    outcomes = await asyncio.gather(*(submit(jobs) for _ in range(100)), return_exceptions=True)

    accepted = [o for o in outcomes if isinstance(o, int)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert (len(accepted), len(refused)) == (5, 95)


async def test_a_refusal_says_what_is_left_and_when_it_resets(
    jobs: JobService, clock: ManualClock
) -> None:
    for _ in range(2):
        await submit(jobs, tier=Tier.STANDARD)  # 4 of 5 daily credits

    with pytest.raises(QuotaExceeded) as raised:
        await submit(jobs, tier=Tier.STANDARD)

    assert raised.value.user_message == (
        "This needs 2 credit(s) and you have 1 of your 5 daily credits left."
    )
    assert raised.value.resets_at == day_start(clock.now + 86_400)


async def test_a_refused_request_stores_nothing(
    jobs: JobService, connection: aiosqlite.Connection
) -> None:
    for _ in range(5):
        await submit(jobs)
    before = await table_snapshot(connection)

    with pytest.raises(QuotaExceeded):
        await submit(jobs)

    assert await table_snapshot(connection) == before


async def test_a_request_for_more_images_than_credits_left_is_refused_whole(
    jobs: JobService, connection: aiosqlite.Connection
) -> None:
    await submit(jobs)
    await submit(jobs)
    before = await table_snapshot(connection)

    with pytest.raises(QuotaExceeded, match="needs 4 credit"):
        await jobs.submit(a_request(image_count=4), a_target(), A_MEMBER)

    assert await table_snapshot(connection) == before


async def test_a_request_for_several_images_takes_a_credit_for_each(jobs: JobService) -> None:
    submission = await jobs.submit(a_request(image_count=3), a_target(), A_MEMBER)

    assert [job.credits for job in submission.jobs] == [1, 1, 1]
    assert [job.batch_index for job in submission.jobs] == [1, 2, 3]


async def test_a_full_member_queue_is_refused_with_what_to_do(
    jobs: JobService, quotas: QuotaService
) -> None:
    await quotas.set_queue_limits(
        GUILD_ID, ADMIN, max_running=None, max_queued_per_member=1, max_queued_per_guild=None
    )
    await submit(jobs)

    with pytest.raises(QueueFull, match=r"already have 1 images waiting.*/queue"):
        await submit(jobs)


async def test_credits_of_a_failed_job_come_back(jobs: JobService, quotas: QuotaService) -> None:
    job_ids = [await submit(jobs) for _ in range(5)]
    await jobs._jobs.mark_failed(job_ids[0], error="blocked", now=1)

    await submit(jobs)

    assert (await quotas.status(A_MEMBER)).day.remaining == 0


async def test_a_new_day_brings_new_daily_credits(
    jobs: JobService, quotas: QuotaService, clock: ManualClock
) -> None:
    for _ in range(5):
        await submit(jobs)
    clock.now = day_start(clock.now + 86_400).timestamp()

    await submit(jobs)

    assert (await quotas.status(A_MEMBER)).day.remaining == 4


async def test_a_grant_raises_todays_allowance(jobs: JobService, quotas: QuotaService) -> None:
    for _ in range(5):
        await submit(jobs)
    await quotas.grant(GUILD_ID, ADMIN, USER_ID, 2)

    await submit(jobs)
    await submit(jobs)
    with pytest.raises(QuotaExceeded):
        await submit(jobs)


async def test_a_reset_forgives_what_was_used(
    jobs: JobService, quotas: QuotaService, clock: ManualClock
) -> None:
    for _ in range(5):
        await submit(jobs)
    clock.now += 1
    await quotas.reset_member(GUILD_ID, ADMIN, USER_ID)
    clock.now += 1

    await submit(jobs)

    assert (await quotas.status(A_MEMBER)).day.remaining == 4


async def test_the_guild_budget_caps_every_member_together(
    jobs: JobService, quotas: QuotaService
) -> None:
    await quotas.set_budget(GUILD_ID, ADMIN, monthly=3)
    await submit(jobs, member(user_id=USER_ID), Tier.STANDARD)

    with pytest.raises(QuotaExceeded, match="monthly budget of 3 credits"):
        await submit(jobs, member(user_id=OTHER_USER), Tier.STANDARD)


async def test_a_restricted_tier_refuses_members_without_its_role(
    jobs: JobService, quotas: QuotaService
) -> None:
    await quotas.set_tier_roles(GUILD_ID, ADMIN, Tier.ULTRA, frozenset({ROLE_GOLD}))

    with pytest.raises(TierRestricted):
        await submit(jobs, member(), Tier.ULTRA)
    await submit(jobs, member(ROLE_GOLD), Tier.ULTRA)


async def test_absurd_limits_are_refused_and_change_nothing(
    quotas: QuotaService, connection: aiosqlite.Connection
) -> None:
    before = await table_snapshot(connection)

    with pytest.raises(InvalidRequest, match="between 0"):
        await quotas.set_default_limits(GUILD_ID, ADMIN, daily=-1, monthly=10)
    with pytest.raises(InvalidRequest, match="between 1 and 2"):
        await quotas.set_queue_limits(
            GUILD_ID, ADMIN, max_running=99, max_queued_per_member=None, max_queued_per_guild=None
        )

    assert await table_snapshot(connection) == before


async def test_every_admin_change_is_audited(quotas: QuotaService) -> None:
    await quotas.set_default_limits(GUILD_ID, ADMIN, daily=3, monthly=30)
    await quotas.grant(GUILD_ID, ADMIN, USER_ID, 4)

    trail = await quotas.audit_trail(GUILD_ID)

    assert [(e.actor_id, e.action) for e in trail] == [(ADMIN, "grant"), (ADMIN, "default-limits")]
    assert trail[0].details == {"user_id": USER_ID, "credits": 4}


async def test_usage_report_ranks_members_and_counts_refunds(
    jobs: JobService, quotas: QuotaService
) -> None:
    first = await submit(jobs, member(user_id=USER_ID), Tier.STANDARD)
    await submit(jobs, member(user_id=OTHER_USER), Tier.ULTRA)
    await jobs._jobs.mark_failed(first, error="blocked", now=1)

    report = await quotas.usage_report(GUILD_ID, monthly=True)

    assert [(m.user_id, m.credits) for m in report.top_members] == [(OTHER_USER, 3)]
    assert report.credits_by_tier[Tier.ULTRA] == 3
    assert (report.failed, report.refunded_credits) == (1, 2)


@pytest.mark.parametrize(
    "post",
    [
        lambda jobs, job_id: jobs.mark_delivered(job_id, now=5),
        lambda jobs, job_id: jobs.mark_undeliverable(job_id, reason="channel gone", now=5),
    ],
    ids=["delivered", "undeliverable"],
)
async def test_usage_report_counts_a_failure_after_it_was_posted(
    repository: JobRepository,
    quotas: QuotaService,
    clock: ManualClock,
    post: Callable[[JobRepository, int], Awaitable[Job | None]],
) -> None:
    """A failure is posted like a result: its state moves on, its error and refund stay."""
    job = await stored_job(repository, now=clock.now, reservation=a_reservation(credits=2))
    await move_to_submitted(repository, job.id)
    assert await repository.mark_failed(job.id, error="blocked", now=4)
    assert await post(repository, job.id)

    report = await quotas.usage_report(GUILD_ID, monthly=True)

    assert (report.failed, report.refunded_credits) == (1, 2)


async def test_usage_report_counts_safety_blocks_per_member(
    jobs: JobService, quotas: QuotaService
) -> None:
    blocked = await submit(jobs, member(user_id=USER_ID), Tier.FAST)
    other_failure = await submit(jobs, member(user_id=OTHER_USER), Tier.FAST)
    await jobs._jobs.mark_failed(blocked, error="blocked", now=1, outcome="safety_blocked")
    await jobs._jobs.mark_failed(other_failure, error="provider down", now=1)

    report = await quotas.usage_report(GUILD_ID, monthly=True)

    assert report.safety_blocked == {USER_ID: 1}
    assert report.safety_blocked_job_ids == frozenset({blocked})


async def test_status_shows_remaining_credits_and_prices(
    jobs: JobService, quotas: QuotaService
) -> None:
    await submit(jobs, tier=Tier.ULTRA)

    status = await quotas.status(A_MEMBER)

    assert (status.day.remaining, status.month.remaining) == (2, 47)
    assert status.tier_credits == {Tier.FAST: 1, Tier.STANDARD: 2, Tier.ULTRA: 3}


async def test_a_canceled_queued_job_is_refunded(jobs: JobService) -> None:
    job_id = await submit(jobs)

    canceled = await jobs.cancel(job_id, A_MEMBER)

    assert canceled.charge is Charge.RELEASED


async def test_nobody_cancels_another_members_job(jobs: JobService) -> None:
    job_id = await submit(jobs)

    with pytest.raises(InvalidRequest, match="not one of yours"):
        await jobs.cancel(job_id, member(user_id=OTHER_USER))
