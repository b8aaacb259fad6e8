"""A restart that cut a create short: the job is looked for at its provider, adopted when it
is there, and failed with a refund only when the provider confirms it is not or cannot say
(issue 8). Nothing is ever sent twice."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from bot.core.domain import Charge, Job, JobState
from bot.core.job_trip import CREATE_NEVER_ARRIVED, INTERRUPTED_CREATE
from bot.core.providers.http import HttpClient
from tests.conftest import stored_job
from tests.core.job_bench import Bench
from tests.factories import a_replicate_provider, a_request, a_target


async def interrupted(
    bench: Bench, *, prompt: str = "a lighthouse at dusk", token: str = "t"
) -> Job:
    """A job caught in ``submitting``: the bot sent its create and died before the answer."""
    job = await stored_job(
        bench.repository, a_request(prompt), a_target(), callback_token=token, now=time.time()
    )
    assert await bench.repository.mark_submitting(job.id, provider="replicate", now=time.time())
    return job


async def create_left_behind(
    bench: Bench, http: HttpClient, job: Job, *, callback_url: str | None = None
) -> str:
    """The prediction that create made at the provider before the crash."""
    created = await a_replicate_provider(bench.fake, http).start(
        job.request, callback_url=callback_url
    )
    return created.id


def callback_url_of(bench: Bench, job: Job) -> str:
    assert bench.public_url is not None
    query = urlencode({"job": job.id, "token": job.callback_token})
    return f"{bench.public_url}/callbacks/replicate?{query}"


async def test_restart_adopts_the_prediction_an_interrupted_create_made(
    bench: Bench, http: HttpClient
) -> None:
    job = await interrupted(bench)
    prediction = await create_left_behind(bench, http, job)
    jobs = await bench.service()

    await jobs.start()
    ended = await bench.ended(job.id)

    assert ended.state is JobState.DELIVERED
    assert ended.provider_job_id == prediction
    assert ended.charge is Charge.COMMITTED
    assert bench.publisher.images == [(job.id, [ended.image_paths[0].name], [])]
    assert bench.fake.create_count == 1


async def test_restart_adopts_only_the_prediction_carrying_the_jobs_own_callback_url(
    bench: Bench, http: HttpClient
) -> None:
    job = await interrupted(bench)
    jobs = await bench.service(callbacks=True)
    ours = await create_left_behind(bench, http, job, callback_url=callback_url_of(bench, job))
    # The same input sent by another bot on the account, after ours: newer in the list.
    await create_left_behind(
        bench, http, job, callback_url="https://other.example/callbacks/replicate?job=1&token=x"
    )

    await jobs.start()
    ended = await bench.ended(job.id)

    assert ended.provider_job_id == ours
    assert bench.fake.create_count == 2


async def test_restart_fails_and_refunds_a_create_the_provider_never_received(
    bench: Bench,
) -> None:
    job = await interrupted(bench)
    jobs = await bench.service()

    await jobs.start()
    ended = await bench.ended(job.id)

    assert ended.error == CREATE_NEVER_ARRIVED
    assert ended.charge is Charge.RELEASED
    assert bench.publisher.failed_jobs == [job.id]
    assert bench.fake.create_count == 0
    assert len(bench.fake.requests_to("GET", "/v1/predictions")) == 1


async def test_restart_fails_and_refunds_when_the_provider_cannot_list_its_jobs(
    bench: Bench, http: HttpClient
) -> None:
    bench.fake.serves_list = False
    job = await interrupted(bench)
    await create_left_behind(bench, http, job)
    jobs = await bench.service()

    await jobs.start()
    ended = await bench.ended(job.id)

    assert ended.error == INTERRUPTED_CREATE
    assert ended.charge is Charge.RELEASED
    assert bench.fake.create_count == 1  # the one the crash left; nothing sent again


async def test_restart_ignores_a_matching_prediction_made_before_the_create_was_sent(
    bench: Bench, http: HttpClient
) -> None:
    job = await stored_job(bench.repository, a_request(), a_target(), now=time.time())
    await create_left_behind(bench, http, job)  # the same prompt, run long before
    later = time.time() + 3600
    assert await bench.repository.mark_submitting(job.id, provider="replicate", now=later)
    jobs = await bench.service()

    await jobs.start()
    ended = await bench.ended(job.id)

    assert ended.error == CREATE_NEVER_ARRIVED


async def test_two_interrupted_jobs_of_one_request_adopt_one_prediction_each(
    bench: Bench, http: HttpClient
) -> None:
    first = await interrupted(bench, token="t.1")
    second = await interrupted(bench, token="t.2")
    made = {
        await create_left_behind(bench, http, first),
        await create_left_behind(bench, http, second),
    }
    jobs = await bench.service()

    await jobs.start()
    ended = [await bench.ended(first.id), await bench.ended(second.id)]

    assert {job.provider_job_id for job in ended} == made
    assert all(job.state is JobState.DELIVERED for job in ended)
    assert bench.fake.create_count == 2


async def test_restart_finds_the_prediction_pages_down_the_list(
    bench: Bench, http: HttpClient
) -> None:
    bench.fake.list_page_size = 1
    job = await interrupted(bench)
    ours = await create_left_behind(bench, http, job)
    for prompt in ("a red fox", "a grey wolf"):  # newer, so listed first
        await a_replicate_provider(bench.fake, http).start(a_request(prompt), callback_url=None)
    jobs = await bench.service()

    await jobs.start()
    ended = await bench.ended(job.id)

    assert ended.provider_job_id == ours
    assert len(bench.fake.requests_to("GET", "/v1/predictions?cursor=")) == 2
