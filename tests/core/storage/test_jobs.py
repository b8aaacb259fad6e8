from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from bot.core.domain import Charge, Job, JobState, Option, OutputFormat
from bot.core.storage.jobs import JobRepository
from tests.conftest import move_to_submitted, stored_job, table_snapshot
from tests.factories import GUILD_ID, USER_ID, a_request, a_reservation, a_target


async def new_job(repository: JobRepository, token: str = "token-1") -> int:
    job = await stored_job(repository, a_request(), a_target(), callback_token=token, now=100.0)
    return job.id


async def test_created_job_round_trips_every_field(repository: JobRepository) -> None:
    request, target = a_request("a red fox"), a_target()
    job = await stored_job(repository, request, target, callback_token="tok", now=100.0)
    loaded = await repository.get(job.id)
    assert loaded is not None
    assert loaded.state is JobState.QUEUED
    assert loaded.request == request
    assert loaded.target == target
    assert loaded.callback_token == "tok.1"  # one token per job of the request
    assert loaded.created_at.timestamp() == 100.0


async def test_a_reserved_job_is_returned_as_a_read_of_its_row_shows_it(
    repository: JobRepository,
) -> None:
    request = a_request("a red fox", seed=7, negative_prompt="fog", chosen=frozenset({Option.SEED}))
    target = a_target(interaction_expires_at=datetime(2026, 12, 3, 12, 0, 0, 123457, UTC))
    created = await repository.create(
        request,
        target,
        callback_token="tok",
        now=1_764_763_200.123456,
        reservation=a_reservation(credits=2, jobs=3),
    )
    assert [job.batch_index for job in created] == [1, 2, 3]
    assert created == [await repository.get(job.id) for job in created]


async def test_happy_path_moves_through_every_state(repository: JobRepository) -> None:
    job_id = await new_job(repository)
    await move_to_submitted(repository, job_id)
    assert await repository.mark_succeeded(job_id, image_paths=[Path("a.jpg")], now=105)
    assert await repository.mark_delivered(job_id, now=106)
    job = await repository.get(job_id)
    assert job is not None
    assert job.state is JobState.DELIVERED
    assert job.image_paths == (Path("a.jpg"),)
    assert job.generation_seconds == 5.0  # created at 100, stored at 105


async def test_a_transition_happens_only_once(repository: JobRepository) -> None:
    job_id = await new_job(repository)
    await move_to_submitted(repository, job_id)
    assert await repository.mark_succeeded(job_id, image_paths=[Path("a.jpg")], now=105)
    assert not await repository.mark_succeeded(job_id, image_paths=[Path("b.jpg")], now=106)
    assert not await repository.mark_failed(job_id, error="late failure", now=107)
    job = await repository.get(job_id)
    assert job is not None
    assert job.image_paths == (Path("a.jpg"),)
    assert job.error is None


async def test_undeliverable_keeps_the_generation_error(repository: JobRepository) -> None:
    job_id = await new_job(repository)
    await repository.mark_failed(job_id, error="blocked by safety", now=101)
    assert await repository.mark_undeliverable(job_id, reason="channel deleted", now=102)
    job = await repository.get(job_id)
    assert job is not None
    assert job.state is JobState.UNDELIVERABLE
    assert job.error == "blocked by safety"
    assert job.delivery_error == "channel deleted"


async def test_unfinished_lists_every_non_final_job_oldest_first(
    repository: JobRepository,
) -> None:
    first, second, third = [await new_job(repository, f"t{n}") for n in range(3)]
    await repository.mark_failed(second, error="x", now=101)
    await repository.mark_delivered(second, now=102)
    assert [job.id for job in await repository.unfinished()] == [first, third]


async def test_queued_lists_only_queued_jobs_oldest_first(repository: JobRepository) -> None:
    first, second, third = [await new_job(repository, f"t{n}") for n in range(3)]
    await move_to_submitted(repository, second)
    assert [job.id for job in await repository.queued()] == [first, third]


async def test_reservation_within_limits_stores_the_job_holding_its_credits(
    repository: JobRepository,
) -> None:
    [job] = await repository.create(
        a_request(),
        a_target(),
        callback_token="t",
        now=100.0,
        reservation=a_reservation(credits=3, member_daily=3),
    )
    assert (job.credits, job.charge) == (3, Charge.RESERVED)


async def test_reservation_over_the_daily_limit_stores_nothing(
    repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    await stored_job(
        repository, callback_token="a", now=100.0, reservation=a_reservation(credits=2)
    )
    before = await table_snapshot(connection)

    refused = await repository.create(
        a_request(),
        a_target(),
        callback_token="b",
        now=101.0,
        reservation=a_reservation(credits=2, member_daily=3),
    )

    assert refused == []
    assert await table_snapshot(connection) == before


async def test_released_credits_do_not_count_as_used(repository: JobRepository) -> None:
    job = await stored_job(repository, now=100.0, reservation=a_reservation(credits=2))
    await repository.mark_failed(job.id, error="blocked", now=101.0)

    assert await repository.usage(guild_id=GUILD_ID, user_id=USER_ID, since=0) == 0


async def test_usage_counts_only_since_the_given_moment(repository: JobRepository) -> None:
    await stored_job(
        repository, callback_token="a", now=100.0, reservation=a_reservation(credits=2)
    )
    await stored_job(
        repository, callback_token="b", now=200.0, reservation=a_reservation(credits=3)
    )

    assert await repository.usage(guild_id=GUILD_ID, user_id=USER_ID, since=150.0) == 3


async def test_queue_limit_per_member_refuses_one_more(repository: JobRepository) -> None:
    await stored_job(repository, callback_token="a")
    refused = await repository.create(
        a_request(),
        a_target(),
        callback_token="b",
        now=2.0,
        reservation=a_reservation(max_queued_per_member=1),
    )
    assert refused == []


async def test_delivering_a_succeeded_job_commits_its_credits(repository: JobRepository) -> None:
    job = await stored_job(repository)
    await move_to_submitted(repository, job.id)
    await repository.mark_succeeded(job.id, image_paths=[], now=4)
    await repository.mark_delivered(job.id, now=5)

    delivered = await repository.get(job.id)
    assert delivered is not None
    assert delivered.charge is Charge.COMMITTED


async def test_delivering_a_failed_job_keeps_its_credits_released(
    repository: JobRepository,
) -> None:
    job = await stored_job(repository)
    await repository.mark_failed(job.id, error="x", now=2)
    await repository.mark_delivered(job.id, now=3)

    delivered = await repository.get(job.id)
    assert delivered is not None
    assert delivered.charge is Charge.RELEASED


async def test_canceling_a_queued_job_releases_its_credits(repository: JobRepository) -> None:
    job = await stored_job(repository)
    assert await repository.mark_canceled(job.id, now=2)

    canceled = await repository.get(job.id)
    assert canceled is not None
    assert (canceled.state, canceled.charge) == (JobState.CANCELED, Charge.RELEASED)


async def test_a_job_being_submitted_cannot_be_canceled(repository: JobRepository) -> None:
    job = await stored_job(repository)
    await repository.mark_submitting(job.id, provider="r", now=2)
    assert not await repository.mark_canceled(job.id, now=3)


async def test_a_delivery_id_is_remembered_once(repository: JobRepository) -> None:
    job_id = await new_job(repository)
    assert await repository.remember_delivery(provider="r", delivery_id="m1", job_id=job_id, now=1)
    assert not await repository.remember_delivery(
        provider="r", delivery_id="m1", job_id=job_id, now=2
    )


async def test_a_job_refused_by_the_provider_returns_to_the_queue(
    repository: JobRepository,
) -> None:
    job_id = await new_job(repository)
    await repository.mark_submitting(job_id, provider="r", now=101)
    assert await repository.mark_not_submitted(job_id, now=102)
    job = await repository.get(job_id)
    assert job is not None
    assert job.state is JobState.QUEUED
    assert job.attempts == 1


async def test_submitting_counts_every_attempt(repository: JobRepository) -> None:
    job_id = await new_job(repository)
    for now in (101, 103):
        await repository.mark_submitting(job_id, provider="r", now=now)
        await repository.mark_not_submitted(job_id, now=now + 1)
    job = await repository.get(job_id)
    assert job is not None
    assert job.attempts == 2


async def test_an_unconfirmed_create_queues_the_job_again_never_to_that_provider(
    repository: JobRepository,
) -> None:
    job = await stored_job(repository)
    await repository.mark_submitting(job.id, provider="aiml", now=2)

    assert await repository.mark_not_submitted(job.id, maybe_created_at=["aiml"], now=3)

    loaded = await repository.get(job.id)
    assert loaded is not None
    assert (loaded.state, loaded.provider, loaded.maybe_created_at) == (
        JobState.QUEUED,
        None,
        ("aiml",),
    )


async def test_the_provider_records_what_it_could_not_apply(repository: JobRepository) -> None:
    job = await stored_job(repository)

    await repository.mark_submitting(job.id, provider="apikley", not_applied=[Option.SAFETY], now=2)

    loaded = await repository.get(job.id)
    assert loaded is not None
    assert loaded.not_applied == {Option.SAFETY}


async def test_success_records_the_format_made_and_charges_only_images_made(
    repository: JobRepository,
) -> None:
    job = await stored_job(
        repository, a_request(image_count=4), reservation=a_reservation(credits=4)
    )
    await move_to_submitted(repository, job.id)

    await repository.mark_succeeded(
        job.id, image_paths=[], output_format=OutputFormat.PNG, credits=2, now=4
    )

    loaded = await repository.get(job.id)
    assert loaded is not None
    assert (loaded.request.output_format, loaded.credits) == (OutputFormat.PNG, 2)


async def test_a_transition_returns_the_updated_job(repository: JobRepository) -> None:
    job = await stored_job(repository)

    submitting = await repository.mark_submitting(
        job.id, provider="apikley", not_applied=[Option.SAFETY], now=2
    )

    assert submitting is not None
    assert (submitting.state, submitting.provider, submitting.attempts) == (
        JobState.SUBMITTING,
        "apikley",
        1,
    )
    assert submitting.not_applied == {Option.SAFETY}
    assert submitting == await repository.get(job.id)


async def test_every_transition_returns_the_row_as_stored(repository: JobRepository) -> None:
    job = await stored_job(repository)
    steps: list[Callable[[], Awaitable[Job | None]]] = [
        lambda: repository.mark_submitting(job.id, provider="r", now=2),
        lambda: repository.mark_not_submitted(job.id, maybe_created_at=["aiml"], now=3),
        lambda: repository.mark_submitting(job.id, provider="r", now=4),
        lambda: repository.mark_submitted(job.id, provider="r", provider_job_id="p1", now=5),
        lambda: repository.mark_succeeded(job.id, image_paths=[Path("a.jpg")], credits=1, now=6),
        lambda: repository.mark_delivered(job.id, now=7),
    ]
    states = []
    for step in steps:
        moved = await step()
        assert moved is not None
        assert moved == await repository.get(job.id)
        states.append(moved.state)

    assert states == [
        JobState.SUBMITTING,
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.SUCCEEDED,
        JobState.DELIVERED,
    ]


async def test_a_transition_that_does_not_apply_returns_none(
    repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await stored_job(repository)
    before = await table_snapshot(connection)

    assert await repository.mark_succeeded(job.id, image_paths=[], now=2) is None
    assert await repository.mark_delivered(job.id, now=2) is None
    assert await repository.mark_failed(job.id + 1, error="no such job", now=2) is None

    assert await table_snapshot(connection) == before


async def test_adopting_a_provider_job_another_job_holds_returns_none(
    repository: JobRepository,
) -> None:
    first, second = [await stored_job(repository, callback_token=t) for t in ("a", "b")]
    await move_to_submitted(repository, first.id, prediction="p1")
    await repository.mark_submitting(second.id, provider="replicate", now=2)

    adopted = await repository.mark_submitted(
        second.id, provider="replicate", provider_job_id="p1", now=3
    )

    assert adopted is None
    still = await repository.get(second.id)
    assert still is not None
    assert still.state is JobState.SUBMITTING


async def test_a_request_that_exactly_fits_gets_all_of_its_jobs(repository: JobRepository) -> None:
    jobs = await repository.create(
        a_request(),
        a_target(),
        callback_token="t",
        now=1.0,
        reservation=a_reservation(credits=1, member_daily=3, jobs=3),
    )

    assert [(job.batch_index, job.batch_size) for job in jobs] == [(1, 3), (2, 3), (3, 3)]
    assert [job.id for job in jobs] == sorted(job.id for job in jobs)
    assert [job.callback_token for job in jobs] == ["t.1", "t.2", "t.3"]


async def test_a_request_one_job_over_the_limit_gets_none(
    repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    before = await table_snapshot(connection)

    refused = await repository.create(
        a_request(),
        a_target(),
        callback_token="t",
        now=1.0,
        reservation=a_reservation(credits=1, member_daily=3, jobs=4),
    )

    assert refused == []
    assert await table_snapshot(connection) == before


async def test_usage_counts_from_the_members_reset(
    repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    """The reservation reads the member's reset itself: what came before it is forgiven."""
    await stored_job(repository, callback_token="a", now=100.0, reservation=a_reservation())
    await connection.execute(
        "INSERT INTO member_resets (guild_id, user_id, reset_at) VALUES (?, ?, ?)",
        (GUILD_ID, USER_ID, 150.0),
    )

    taken = await repository.create(
        a_request(),
        a_target(),
        callback_token="b",
        now=200.0,
        reservation=a_reservation(member_daily=1),
    )

    assert len(taken) == 1


async def test_undeliverable_jobs_are_taken_for_telling_once(repository: JobRepository) -> None:
    job_id = await new_job(repository)
    await repository.mark_failed(job_id, error="blocked", now=2)
    await repository.mark_undeliverable(job_id, reason="no route", now=3)

    first = await repository.take_undelivered(guild_id=GUILD_ID, user_id=USER_ID, now=4)
    again = await repository.take_undelivered(guild_id=GUILD_ID, user_id=USER_ID, now=5)

    assert [job.id for job in first] == [job_id]
    assert first[0].undelivered_told_at is not None
    assert again == []


async def test_recent_jobs_list_undeliverable_ones_first_then_newest(
    repository: JobRepository,
) -> None:
    older, lost, newer = [await new_job(repository, f"t{n}") for n in range(3)]
    await repository.mark_failed(lost, error="blocked", now=2)
    await repository.mark_undeliverable(lost, reason="no route", now=3)

    recent = await repository.recent_jobs(guild_id=GUILD_ID, user_id=USER_ID, limit=10)

    assert [job.id for job in recent] == [lost, newer, older]
