from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core import delivery as delivery_module
from bot.core.delivery import DeliveryService
from bot.core.domain import Job, JobState
from bot.core.errors import ChannelUnavailable, DeliveryFailed
from bot.core.images import ImageStore
from bot.core.storage.jobs import JobRepository
from tests.conftest import move_to_submitted, stored_job
from tests.factories import a_request, a_reservation, a_target, spooled
from tests.fakes.loopback import render_image
from tests.fakes.recording_publisher import RecordingPublisher

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
JOB = Job(
    id=1,
    state=JobState.SUCCEEDED,
    request=a_request(),
    target=a_target(),
    provider="replicate",
    provider_job_id="p1",
    callback_token="t",
    attempts=1,
    error=None,
    delivery_error=None,
    image_paths=(),
    created_at=datetime.now(UTC),
    updated_at=datetime.now(UTC),
)


async def succeeded_job(
    repository: JobRepository,
    store: ImageStore,
    *,
    limit: int,
    images: int = 1,
    data: bytes = JPEG,
) -> Job:
    job = await stored_job(
        repository, a_request(), a_target(attachment_size_limit=limit), callback_token="t", now=1
    )
    await move_to_submitted(repository, job.id)
    paths = await store.save(f"job-{job.id}", [spooled(store, data, "jpg") for _ in range(images)])
    await repository.mark_succeeded(job.id, image_paths=paths, now=2)
    loaded = await repository.get(job.id)
    assert loaded is not None
    return loaded


async def state_of(repository: JobRepository, job_id: int) -> Job:
    job = await repository.get(job_id)
    assert job is not None
    return job


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")


async def test_succeeded_job_is_posted_once_and_marked_delivered(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher()
    await DeliveryService(publisher, store, repository).deliver(job)
    assert publisher.images == [(job.id, [f"job-{job.id}-1.jpg"], [])]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_the_post_reads_the_stored_file(repository: JobRepository, store: ImageStore) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher()

    await DeliveryService(publisher, store, repository).deliver(job)

    assert publisher.uploaded == {job.image_paths[0].name: JPEG}


async def test_image_over_the_upload_limit_is_named_not_attached(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10)
    publisher = RecordingPublisher()
    await DeliveryService(publisher, store, repository).deliver(job)
    assert publisher.images == [(job.id, [], [f"job-{job.id}-1.jpg"])]


async def test_failed_job_gets_a_failure_notice(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await stored_job(repository, a_request(), a_target(), callback_token="t", now=1)
    await repository.mark_failed(job.id, error="blocked", now=2)
    publisher = RecordingPublisher()
    await DeliveryService(publisher, store, repository).deliver(await state_of(repository, job.id))
    assert publisher.failed_jobs == [job.id]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_refused_destination_makes_the_job_undeliverable_and_keeps_the_image(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(DeliveryFailed(detail="channel deleted"))
    await DeliveryService(publisher, store, repository).deliver(job)
    after = await state_of(repository, job.id)
    assert after.state is JobState.UNDELIVERABLE
    assert after.delivery_error == "channel deleted"
    assert all(path.exists() for path in after.image_paths)


async def test_transient_errors_are_retried_before_succeeding(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(ConnectionResetError(), ConnectionResetError())
    service = DeliveryService(publisher, store, repository, retry_delays=(0, 0, 0))
    await service.deliver(job)
    assert len(publisher.images) == 1
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_persistent_transient_errors_end_undeliverable(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(*(ConnectionResetError() for _ in range(3)))
    service = DeliveryService(publisher, store, repository, retry_delays=(0, 0))
    await service.deliver(job)
    assert publisher.images == []
    assert (await state_of(repository, job.id)).state is JobState.UNDELIVERABLE


async def test_missing_image_file_makes_the_job_undeliverable(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    job.image_paths[0].unlink()
    publisher = RecordingPublisher()
    await DeliveryService(publisher, store, repository).deliver(job)
    assert (await state_of(repository, job.id)).state is JobState.UNDELIVERABLE


async def test_a_refusing_channel_sends_the_result_to_the_private_response(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(ChannelUnavailable(detail="10003 Unknown Channel"))

    await DeliveryService(publisher, store, repository).deliver(job)

    assert publisher.private == [[(job.id, [f"job-{job.id}-1.jpg"])]]
    after = await state_of(repository, job.id)
    assert after.state is JobState.DELIVERED
    assert after.private_delivery_at is not None


def expired(job: Job) -> Job:
    return dataclasses.replace(
        job, target=dataclasses.replace(job.target, interaction_expires_at=datetime.now(UTC))
    )


async def test_a_refusing_channel_after_the_token_expired_sends_the_image_directly(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(ChannelUnavailable(detail="10003 Unknown Channel"))

    await DeliveryService(publisher, store, repository).deliver(expired(job))

    assert publisher.private == []
    assert publisher.direct == [[(job.id, [job.image_paths[0].name])]]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_no_channel_no_token_and_closed_direct_messages_is_undeliverable_at_once(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(ChannelUnavailable(detail="10003 Unknown Channel"))
    publisher.direct_failures.append(DeliveryFailed(detail="50007 Cannot send messages"))

    await DeliveryService(publisher, store, repository).deliver(expired(job))

    ended = await state_of(repository, job.id)
    assert ended.state is JobState.UNDELIVERABLE
    assert ended.delivery_error is not None
    assert "50007" in ended.delivery_error


async def test_progress_never_overwrites_a_result_shown_privately(
    repository: JobRepository, store: ImageStore
) -> None:
    first, second = await repository.create(
        a_request(),
        a_target(),
        callback_token="t",
        now=1,
        reservation=a_reservation(jobs=2),
    )
    await repository.mark_private_delivery(first.id, now=2)
    publisher = RecordingPublisher()

    await DeliveryService(publisher, store, repository).progress(second, None)

    assert publisher.progress == []


async def test_files_of_one_channel_post_are_re_encoded_to_fit_the_upload_limit_together(
    repository: JobRepository, store: ImageStore
) -> None:
    """Each image fits on its own, all four do not: Discord would refuse the post (413 40005)."""
    image, _ = render_image("a lighthouse at dusk", "1:1", png=False)
    limit = len(image) * 5 // 2
    job = await succeeded_job(repository, store, limit=limit, images=4, data=image)
    publisher = RecordingPublisher()

    await DeliveryService(publisher, store, repository).deliver(job)

    [(job_id, uploaded, left_out)] = publisher.images
    assert (job_id, left_out) == (job.id, [])
    assert len(uploaded) == 4
    assert sum(len(publisher.uploaded[name]) for name in uploaded) <= limit
    assert all(path.exists() for path in job.image_paths)  # the originals are kept
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_a_job_that_took_the_private_route_never_goes_back_to_the_channel(
    repository: JobRepository, store: ImageStore
) -> None:
    """A restart after the private edit: the channel works again, and would post a copy."""
    job = await succeeded_job(repository, store, limit=10_000)
    await repository.mark_private_delivery(job.id, now=3)
    publisher = RecordingPublisher()

    await DeliveryService(publisher, store, repository).deliver(await state_of(repository, job.id))

    assert publisher.images == []
    assert publisher.private == [[(job.id, [f"job-{job.id}-1.jpg"])]]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_a_retry_of_a_failed_private_edit_stays_private(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher(ChannelUnavailable(detail="50001 Missing Access"))
    publisher.private_failures.append(ConnectionResetError())  # the edit may have landed
    service = DeliveryService(publisher, store, repository, retry_delays=(0,))

    await service.deliver(job)

    assert publisher.images == []
    assert publisher.private == [[(job.id, [f"job-{job.id}-1.jpg"])]]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def a_request_of(repository: JobRepository, jobs: int) -> list[Job]:
    created = await repository.create(
        a_request(), a_target(), callback_token="t", now=1, reservation=a_reservation(jobs=jobs)
    )
    for job in created:
        await move_to_submitted(repository, job.id, prediction=f"p{job.id}")
    return created


async def succeed(repository: JobRepository, store: ImageStore, job: Job) -> Job:
    paths = await store.save(f"job-{job.id}", [spooled(store, JPEG, "jpg")])
    succeeded = await repository.mark_succeeded(job.id, image_paths=paths, now=2)
    assert succeeded is not None
    return succeeded


async def test_a_requests_images_wait_for_its_last_job_and_come_as_one_post(
    repository: JobRepository, store: ImageStore
) -> None:
    first, second = await a_request_of(repository, 2)
    publisher = RecordingPublisher()
    delivery = DeliveryService(publisher, store, repository)

    await delivery.deliver(await succeed(repository, store, first))
    assert publisher.posts == []  # the second image is still being made
    await delivery.deliver(await succeed(repository, store, second))

    assert publisher.posts == [[first.id, second.id]]
    assert [(await state_of(repository, job.id)).state for job in (first, second)] == [
        JobState.DELIVERED,
        JobState.DELIVERED,
    ]


async def test_a_posted_request_ends_the_members_status_with_a_link_and_its_failures(
    repository: JobRepository, store: ImageStore
) -> None:
    made, broken = await a_request_of(repository, 2)
    publisher = RecordingPublisher()
    delivery = DeliveryService(publisher, store, repository)
    await repository.mark_failed(broken.id, error="blocked by the safety filter", now=2)

    await delivery.deliver(await succeed(repository, store, made))

    [(status_job, posted, failed)] = publisher.outcomes
    assert posted is not None
    assert (await state_of(repository, made.id)).result_message_id == posted.message_id
    assert (status_job, failed) == (made.id, [broken.id])
    assert publisher.posts == [[made.id]]  # the failure is never in the channel


async def test_a_failure_is_told_privately_never_in_the_channel(
    repository: JobRepository, store: ImageStore
) -> None:
    [job] = await a_request_of(repository, 1)
    failed = await repository.mark_failed(job.id, error="blocked by the safety filter", now=2)
    assert failed is not None
    publisher = RecordingPublisher()

    await DeliveryService(publisher, store, repository).deliver(failed)

    assert publisher.posts == []
    assert publisher.outcomes == [(job.id, None, [job.id])]


async def test_a_failure_after_the_token_expired_comes_by_direct_message(
    repository: JobRepository, store: ImageStore
) -> None:
    [job] = await a_request_of(repository, 1)
    failed = await repository.mark_failed(job.id, error="blocked by the safety filter", now=2)
    assert failed is not None
    publisher = RecordingPublisher()

    await DeliveryService(publisher, store, repository).deliver(expired(failed))

    assert (publisher.posts, publisher.outcomes) == ([], [])
    assert publisher.direct == [[(job.id, [])]]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED


async def test_a_direct_message_carries_images_within_a_dms_own_upload_limit(
    repository: JobRepository, store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A boosted server's interactions allow bigger files than a direct message does."""
    image, _ = render_image("a lighthouse at dusk", "1:1", png=False)
    monkeypatch.setattr(delivery_module, "DIRECT_UPLOAD_LIMIT", len(image) // 2)
    job = await succeeded_job(repository, store, limit=len(image) * 10, data=image)
    publisher = RecordingPublisher(ChannelUnavailable(detail="10003 Unknown Channel"))

    await DeliveryService(publisher, store, repository).deliver(expired(job))

    [[(job_id, [sent])]] = publisher.direct
    assert job_id == job.id
    assert len(publisher.uploaded[sent]) <= len(image) // 2


async def test_a_status_edit_that_fails_after_the_post_never_posts_again(
    repository: JobRepository, store: ImageStore
) -> None:
    job = await succeeded_job(repository, store, limit=10_000)
    publisher = RecordingPublisher()
    publisher.private_failures.append(ConnectionResetError("Discord went away mid-edit"))
    service = DeliveryService(publisher, store, repository, retry_delays=(0, 0, 0))

    await service.deliver(job)

    assert publisher.posts == [[job.id]]
    assert (await state_of(repository, job.id)).state is JobState.DELIVERED
