"""What a job does with what its provider hands back (issue 8): only a real image from an
allowed address is saved, posted and charged; anything else fails the job with a refund."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.domain import Charge, JobState
from bot.core.errors import NotAnImage, UnsafeImageSource
from tests.core.job_bench import Bench, run_one
from tests.fakes.loopback import InternalService, ScriptedResponse


@pytest.fixture
async def internal() -> AsyncIterator[InternalService]:
    async with InternalService() as service:
        yield service


async def test_a_result_that_is_an_html_page_fails_refunded_and_is_never_posted(
    bench: Bench,
) -> None:
    bench.fake.script_delivery(ScriptedResponse.html(200))
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.error == NotAnImage.user_message
    assert job.charge is Charge.RELEASED
    assert job.image_paths == ()
    assert bench.publisher.images == []
    assert bench.publisher.failed_jobs == [job.id]
    # Junk is not a hiccup: the file is not fetched again.
    assert len(bench.fake.requests_to("GET", "/delivery/")) == 1


async def test_a_result_pointing_at_an_internal_service_is_refused_and_refunded(
    bench: Bench, internal: InternalService
) -> None:
    jobs = await bench.service()
    bench.fake.script_get(
        ScriptedResponse.json(200, {"id": "p1", "status": "succeeded", "output": internal.url()})
    )

    job = await run_one(bench, jobs)

    assert job.state is JobState.DELIVERED
    assert job.error == UnsafeImageSource.user_message
    assert job.charge is Charge.RELEASED
    assert bench.publisher.images == []
    assert internal.requests == []
