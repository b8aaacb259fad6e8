"""Routing and failover across the three provider types, each a fake on loopback: a job moves
on when a provider is busy or down, stays put when the request itself is at fault, and the
member is charged once or not at all."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from pydantic import SecretStr

from bot.core.clock import Clock, SystemClock
from bot.core.config import Secrets, Settings
from bot.core.domain import Charge, Job, JobState, Option, Tier
from bot.core.errors import DeadlineExceeded, SafetyBlocked
from bot.core.images import ImageStore
from bot.core.job_trip import UNCONFIRMED_CREATE
from bot.core.jobs import JobService
from bot.core.providers.http import HttpClient
from bot.core.providers.registry import build_providers
from bot.core.routing import HealthState, Router, router_for
from bot.core.storage.jobs import JobRepository
from tests.factories import A_MEMBER, SkippingClock, a_request, a_reservation, a_target
from tests.fakes.fake_aiml import FakeAiml
from tests.fakes.fake_apikley import MAINTENANCE, FakeApikley
from tests.fakes.fake_replicate import FakeReplicate, throttled
from tests.fakes.loopback import ScriptedResponse, render_image
from tests.fakes.recording_publisher import RecordingPublisher
from tests.services import job_service

FINISHED = (JobState.DELIVERED, JobState.UNDELIVERABLE)


def closed_port_url(path: str = "") -> str:
    """A loopback address nothing listens on: every connection is refused."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class Fleet:
    """A job service routing over a fake Replicate, a fake AIML and a fake Apikley."""

    def __init__(
        self,
        connection: aiosqlite.Connection,
        http: HttpClient,
        tmp_path: Path,
        fakes: tuple[FakeReplicate, FakeAiml, FakeApikley],
    ) -> None:
        self.repository = JobRepository(connection)
        self.connection = connection
        self.http = http
        self.tmp_path = tmp_path
        self.replicate, self.aiml, self.apikley = fakes
        self.publisher = RecordingPublisher()
        self.service: JobService | None = None
        self.router: Router | None = None

    def provider_sections(self) -> dict[str, dict[str, Any]]:
        return {
            "replicate": {
                "base_url": self.replicate.base_url,
                "webhook_mode": "token",
                "request_timeout_seconds": 5.0,
            },
            "aiml": {"type": "aimlapi", "base_url": self.aiml.base_url},
            # The fake finishes at once: polling on Apikley's real schedule would only wait.
            "apikley": {
                "type": "apikley",
                "base_url": self.apikley.base_url,
                "poll_intervals_seconds": [0.02, 0.05, 0.1],
            },
        }

    async def start(
        self,
        order: list[str],
        *,
        providers: dict[str, dict[str, Any]] | None = None,
        deadline_seconds: float = 600.0,
        clock: Clock | None = None,
    ) -> JobService:
        sections = self.provider_sections()
        for name, overrides in (providers or {}).items():
            sections[name] = {**sections[name], **overrides}
        settings = Settings.model_validate(
            {
                "providers": sections,
                "tiers": {
                    tier.value: {"providers": order, "deadline_seconds": deadline_seconds}
                    for tier in Tier
                },
                "jobs": {"poll_initial_seconds": 0.02, "poll_max_seconds": 0.1},
                "routing": {"failure_threshold": 3, "cooldown_seconds": 60},
                "queue": {"max_queued_per_member": 20},
                "quotas": {"member_daily_credits": 20},
            }
        )
        secrets = Secrets(
            discord_token=None,
            provider_api_keys={
                "replicate": SecretStr(self.replicate.token),
                "aiml": SecretStr(self.aiml.token),
                "apikley": SecretStr(self.apikley.token),
            },
            webhook_secrets={},
        )
        clients = build_providers(settings, secrets, self.http)
        # Back-offs pass at once on this clock; polls still wait on the wall clock.
        clock = clock or SkippingClock()
        self.router = router_for(settings, clients, clock=clock.now)
        self.service = job_service(
            self.connection,
            providers=clients,
            router=self.router,
            publisher=self.publisher,
            images=ImageStore(self.tmp_path / "images"),
            settings=settings,
            public_url=None,
            clock=clock,
        )
        await self.service.start()
        return self.service

    async def run(self, **request: Any) -> list[Job]:
        """Submit one /imagine and wait until each of its jobs has ended."""
        assert self.service is not None
        submission = await self.service.submit(a_request(**request), a_target(), A_MEMBER)
        return [await self.ended(job.id) for job in submission.jobs]

    async def ended(self, job_id: int) -> Job:
        return await self.until(job_id, lambda job: job.state in FINISHED)

    async def until(self, job_id: int, condition: Callable[[Job], bool]) -> Job:
        """The job once ``condition`` holds: a database row announces nothing."""
        async with asyncio.timeout(15.0):
            while True:
                job = await self.repository.get(job_id)
                assert job is not None
                if condition(job):
                    return job
                await asyncio.sleep(0.02)


@pytest.fixture
async def fleet(
    connection: aiosqlite.Connection,
    http: HttpClient,
    tmp_path: Path,
    fake_replicate: FakeReplicate,
    fake_aiml: FakeAiml,
    fake_apikley: FakeApikley,
) -> AsyncIterator[Fleet]:
    fleet = Fleet(connection, http, tmp_path, (fake_replicate, fake_aiml, fake_apikley))
    yield fleet
    if fleet.service is not None:
        await fleet.service.stop()


def delivered_once(job: Job) -> bool:
    return (job.state, job.charge, len(job.image_paths)) == (
        JobState.DELIVERED,
        Charge.COMMITTED,
        job.request.image_count,
    )


async def test_a_429_storm_moves_the_job_to_the_next_provider_and_charges_once(
    fleet: Fleet,
) -> None:
    fleet.replicate.script_create(*(throttled(retry_after=30) for _ in range(5)))
    await fleet.start(["replicate", "aiml"])

    [job] = await fleet.run()

    assert delivered_once(job)
    assert (job.provider, job.credits) == ("aiml", 1)
    assert fleet.replicate.create_count == 0
    assert fleet.aiml.generation_count == 1


async def test_an_html_502_page_moves_the_job_on_and_never_resends_it_there(
    fleet: Fleet,
) -> None:
    fleet.replicate.script_create(ScriptedResponse.html(502))
    await fleet.start(["replicate", "apikley"])

    [job] = await fleet.run()

    assert delivered_once(job)
    assert job.provider == "apikley"
    assert job.maybe_created_at == ("replicate",)
    assert len(fleet.replicate.requests_to("POST", "/predictions")) == 1


async def test_a_provider_down_for_the_whole_test_is_backed_off_and_skipped(
    fleet: Fleet,
) -> None:
    await fleet.start(
        ["replicate", "aiml"], providers={"replicate": {"base_url": closed_port_url("/v1")}}
    )

    jobs = [job for _ in range(4) for job in await fleet.run()]

    assert all(delivered_once(job) and job.provider == "aiml" for job in jobs)
    assert fleet.aiml.generation_count == 4
    assert fleet.router is not None
    [replicate] = [r for r in fleet.router.health() if r.provider == "replicate"]
    # Tried once; the later jobs went straight to AIML while it was backed off.
    assert (replicate.state, replicate.recent_calls) == (HealthState.BACKING_OFF, 1)


async def test_maintenance_at_apikley_fails_over_to_replicate(fleet: Fleet) -> None:
    fleet.apikley.script_create(MAINTENANCE)
    await fleet.start(["apikley", "replicate"])

    [job] = await fleet.run()

    assert delivered_once(job)
    assert job.provider == "replicate"
    assert (fleet.apikley.create_count, fleet.replicate.create_count) == (0, 1)


async def test_a_safety_block_does_not_fail_over_and_is_refunded(fleet: Fleet) -> None:
    fleet.apikley.fail_next()  # "prompt contains prohibited content"
    await fleet.start(["apikley", "aiml"])

    [job] = await fleet.run()

    assert job.state is JobState.DELIVERED
    assert job.error == SafetyBlocked().user_message
    assert job.charge is Charge.RELEASED
    assert fleet.aiml.generation_count == 0


async def test_a_validation_error_does_not_fail_over(fleet: Fleet) -> None:
    fleet.aiml.script_generation(
        ScriptedResponse.json(400, {"message": "Body validation error!", "statusCode": 400})
    )
    await fleet.start(["aiml", "replicate"])

    [job] = await fleet.run()

    assert (job.state, job.charge) == (JobState.DELIVERED, Charge.RELEASED)
    assert job.error is not None
    assert fleet.replicate.create_count == 0


async def test_a_synchronous_timeout_is_never_sent_again_and_is_refunded(fleet: Fleet) -> None:
    fleet.aiml.script_generation(ScriptedResponse.slow(3.0))
    await fleet.start(["aiml"], providers={"aiml": {"request_timeout_seconds": 0.3}})

    [job] = await fleet.run()

    assert (job.error, job.charge) == (UNCONFIRMED_CREATE, Charge.RELEASED)
    assert fleet.aiml.generation_count == 1


async def test_every_provider_down_fails_the_job_and_refunds_it(fleet: Fleet) -> None:
    await fleet.start(
        ["replicate", "apikley"],
        providers={
            "replicate": {"base_url": closed_port_url("/v1")},
            "apikley": {"base_url": closed_port_url()},
        },
    )

    [job] = await fleet.run()

    assert (job.state, job.charge) == (JobState.DELIVERED, Charge.RELEASED)
    assert job.error is not None


async def test_a_chosen_option_sends_the_job_to_a_provider_that_honours_it(
    fleet: Fleet,
) -> None:
    await fleet.start(["replicate", "apikley"])

    [job] = await fleet.run(negative_prompt="blurry")

    assert job.provider == "apikley"
    assert job.not_applied == frozenset()
    [task] = fleet.apikley.tasks.values()
    assert task.input["negative_prompt"] == "blurry"


async def test_an_option_no_provider_honours_is_recorded_as_not_applied(fleet: Fleet) -> None:
    await fleet.start(["replicate"])

    [job] = await fleet.run(negative_prompt="blurry", seed=7)

    assert delivered_once(job)
    assert job.not_applied == {Option.NEGATIVE_PROMPT, Option.SEED}


async def test_four_images_from_a_one_image_provider_become_four_jobs(fleet: Fleet) -> None:
    await fleet.start(["replicate"])

    jobs = await fleet.run(image_count=4)

    assert [job.batch_index for job in jobs] == [1, 2, 3, 4]
    assert all(delivered_once(job) and job.credits == 1 for job in jobs)
    assert fleet.replicate.create_count == 4


async def test_four_images_from_aiml_are_one_job_and_one_call(fleet: Fleet) -> None:
    await fleet.start(["aiml"])

    [job] = await fleet.run(image_count=4, tier=Tier.STANDARD)

    assert delivered_once(job)
    assert job.credits == 8  # 2 credits per standard image
    [generation] = fleet.aiml.generations
    assert generation.body["num_images"] == 4


async def test_the_prompt_aiml_rewrote_is_recorded(fleet: Fleet) -> None:
    await fleet.start(["aiml"], providers={"aiml": {"enhance_prompt": True}})

    [job] = await fleet.run(prompt="a fox")

    assert job.effective_prompt is not None
    assert job.effective_prompt.startswith("a fox")
    assert job.effective_prompt != "a fox"


async def test_a_prompt_too_long_for_aiml_goes_to_a_provider_that_takes_it(
    fleet: Fleet,
) -> None:
    await fleet.start(["aiml", "replicate"])

    [job] = await fleet.run(prompt="a fox " * 80)

    assert job.provider == "replicate"
    assert fleet.aiml.requests == []


async def test_output_format_records_what_the_provider_made(fleet: Fleet) -> None:
    await fleet.start(["aiml"])

    [job] = await fleet.run()

    assert job.request.output_format.value == "png"
    assert [path.suffix for path in job.image_paths] == [".png"]


async def test_a_restart_resumes_an_apikley_task_without_creating_it_again(
    fleet: Fleet,
) -> None:
    fleet.apikley.processing_seconds = 1.0
    service = await fleet.start(["apikley"])
    submission = await service.submit(a_request(), a_target(), A_MEMBER)
    [job] = submission.jobs
    await fleet.until(job.id, lambda current: current.provider_job_id is not None)
    await service.stop()

    await fleet.start(["apikley"])

    assert delivered_once(await fleet.ended(job.id))
    assert fleet.apikley.create_count == 1
    assert len(fleet.publisher.images) == 1


async def test_after_a_restart_a_job_is_never_sent_where_it_may_exist(fleet: Fleet) -> None:
    [job] = await fleet.repository.create(
        a_request(), a_target(), callback_token="t", now=time.time(), reservation=a_reservation()
    )
    # Left by a run that timed out at Replicate and stopped before trying AIML.
    await fleet.repository.mark_submitting(job.id, provider="replicate", now=time.time())
    await fleet.repository.mark_not_submitted(
        job.id, maybe_created_at=["replicate"], now=time.time()
    )

    await fleet.start(["replicate", "aiml"])
    ended = await fleet.ended(job.id)

    assert delivered_once(ended)
    assert ended.provider == "aiml"
    assert fleet.replicate.requests == []


async def test_a_job_canceled_while_its_provider_is_busy_is_never_sent(fleet: Fleet) -> None:
    fleet.replicate.script_create(throttled(retry_after=1.0))
    # The Retry-After pause must really last, for the cancel to land inside it.
    service = await fleet.start(["replicate"], clock=SystemClock())
    [job] = (await service.submit(a_request(), a_target(), A_MEMBER)).jobs
    await fleet.until(job.id, lambda _: len(fleet.replicate.requests_to("POST", "/models/")) == 1)

    canceled = await service.cancel(job.id, A_MEMBER)
    await asyncio.sleep(1.5)  # past the Retry-After, when a second create would go out

    assert (canceled.state, canceled.charge) == (JobState.CANCELED, Charge.RELEASED)
    assert len(fleet.replicate.requests_to("POST", "/models/")) == 1


async def test_a_busy_provider_cannot_keep_a_job_past_its_deadline(fleet: Fleet) -> None:
    fleet.replicate.script_create(*(throttled(retry_after=5.0) for _ in range(3)))
    await fleet.start(["replicate"], deadline_seconds=1.0)

    [job] = await fleet.run()

    assert (job.error, job.charge) == (DeadlineExceeded().user_message, Charge.RELEASED)
    assert len(fleet.replicate.requests_to("POST", "/models/")) == 1


async def test_only_the_images_that_came_back_are_charged(fleet: Fleet) -> None:
    png = render_image("a fox", "1:1", png=True)[0]
    inline = {"b64_json": base64.b64encode(png).decode(), "url": None, "mime_type": "image/png"}
    fleet.aiml.script_generation(
        ScriptedResponse.json(200, {"data": [inline, inline], "meta": {"usage": {}}})
    )
    await fleet.start(["aiml"])

    [job] = await fleet.run(image_count=4)

    assert (job.state, job.charge, len(job.image_paths)) == (
        JobState.DELIVERED,
        Charge.COMMITTED,
        2,
    )
    assert job.credits == 2  # of the 4 reserved
