from __future__ import annotations

from pathlib import Path

from bot.core.domain import JobState
from bot.core.storage.jobs import JobRepository
from tests.conftest import move_to_submitted
from tests.factories import a_request, a_target


async def new_job(repository: JobRepository, token: str = "token-1") -> int:
    job = await repository.create(a_request(), a_target(), callback_token=token, now=100.0)
    return job.id


async def test_created_job_round_trips_every_field(repository: JobRepository) -> None:
    request, target = a_request("a red fox"), a_target()
    job = await repository.create(request, target, callback_token="tok", now=100.0)
    loaded = await repository.get(job.id)
    assert loaded is not None
    assert loaded.state is JobState.QUEUED
    assert loaded.request == request
    assert loaded.target == target
    assert loaded.callback_token == "tok"
    assert loaded.created_at.timestamp() == 100.0


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


async def test_queued_skips_jobs_already_held(repository: JobRepository) -> None:
    first, second, third = [await new_job(repository, f"t{n}") for n in range(3)]
    queued = await repository.queued(limit=5, excluding=[first])
    assert [job.id for job in queued] == [second, third]


async def test_queue_position_counts_older_queued_jobs(repository: JobRepository) -> None:
    first, _, third = [await new_job(repository, f"t{n}") for n in range(3)]
    await move_to_submitted(repository, first)
    assert await repository.queue_position(third) == 2


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
