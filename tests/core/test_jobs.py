"""The job service end to end on the core side: fake Replicate, real SQLite, real listener."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from bot.core.domain import Charge, Job, JobState, Member, Tier
from bot.core.errors import (
    DeadlineExceeded,
    InvalidRequest,
    ResultUnavailable,
    SafetyBlocked,
)
from bot.core.job_trip import ANSWER_OF_ANOTHER_JOB, UNCONFIRMED_CREATE
from bot.core.jobs import JobService, Submission
from bot.core.polling import WAKE_GAP_SECONDS
from bot.core.providers.http import HttpClient
from bot.core.storage.database import open_database
from bot.core.storage.jobs import JobRepository
from bot.core.text import is_blank
from bot.core.webhooks import sign, signing_key
from tests.conftest import move_to_submitted, stored_job, table_snapshot
from tests.core.job_bench import ENDED, SLOW_POLLS, Bench, run_one
from tests.counting import counting_round_trips
from tests.factories import (
    A_MEMBER,
    GUILD_ID,
    USER_ID,
    a_replicate_provider,
    a_request,
    a_reservation,
    a_target,
    spooled,
)
from tests.fakes.fake_replicate import problem, throttled
from tests.fakes.loopback import ScriptedResponse, render_image


async def test_polled_job_is_saved_and_delivered(bench: Bench) -> None:
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.state is JobState.DELIVERED
    [path] = job.image_paths
    assert path.read_bytes().startswith(b"\xff\xd8")  # a JPEG on disk before it was posted
    assert bench.publisher.images == [(job.id, [path.name], [])]
    assert bench.fake.create_count == 1


async def test_signed_callback_cuts_the_wait_for_the_next_poll_short(bench: Bench) -> None:
    jobs = await bench.service(callbacks=True, jobs=SLOW_POLLS)

    job = await run_one(bench, jobs)

    assert job.state is JobState.DELIVERED
    [delivery] = bench.fake.webhook_deliveries
    assert delivery.status == 200
    # One look right after the create, one to confirm the callback: no polling in between.
    assert len(bench.fake.requests_to("GET", "/predictions/")) == 2


async def test_a_lost_webhook_costs_only_a_poll_interval(bench: Bench) -> None:
    bench.fake.send_webhooks = False
    jobs = await bench.service(callbacks=True)
    await jobs.start()
    started = time.monotonic()

    job = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
    ended = await bench.ended(job.id)

    assert ended.state is JobState.DELIVERED
    # Polled from the start (0.05 s doubling to 0.2 s), not after a 30 s callback grace.
    assert time.monotonic() - started < 5
    assert bench.fake.webhook_deliveries == []


async def test_duplicate_callbacks_deliver_once(bench: Bench) -> None:
    bench.fake.webhook_copies = 3
    jobs = await bench.service(callbacks=True, jobs=SLOW_POLLS)

    job = await run_one(bench, jobs)
    await bench.fake.wait_for_webhook_deliveries(3)

    assert [d.status for d in bench.fake.webhook_deliveries] == [200, 200, 200]
    assert bench.publisher.images == [(job.id, [job.image_paths[0].name], [])]


async def awaiting_its_result(
    bench: Bench, jobs: JobService, *, processing_seconds: float = 60.0
) -> Job:
    """A job whose prediction is still running when the bot first looks at it."""
    bench.fake.processing_seconds = processing_seconds
    bench.fake.send_webhooks = False
    await jobs.start()
    job = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
    async with asyncio.timeout(10.0):
        # The first look comes once the job listens for callbacks; the fake marks no event.
        while not bench.fake.requests_to("GET", "/predictions/"):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    submitted = await bench.repository.get(job.id)
    assert submitted is not None
    return submitted


def signed_callback(bench: Bench, job: Job, status: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"id": job.provider_job_id, "status": status}).encode()
    key = signing_key(bench.fake.webhook_secret)
    timestamp = int(time.time())
    signature = sign(key, "msg_" + status, timestamp, body)
    headers = {
        "webhook-id": "msg_" + status,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }
    return headers, body


async def test_a_callback_saying_still_processing_changes_nothing_and_asks_nothing(
    bench: Bench,
) -> None:
    jobs = await bench.service(callbacks=True, jobs=SLOW_POLLS)
    job = await awaiting_its_result(bench, jobs)
    assert job.provider_job_id is not None
    headers, body = signed_callback(bench, job, "processing")
    before = await table_snapshot(bench.connection)

    outcome = await jobs.handle_callback(
        "replicate", job_id=job.id, token=job.callback_token, headers=headers, body=body
    )
    await asyncio.sleep(0.2)  # time enough for a poll, were one woken

    assert outcome == "still running"
    assert len(bench.fake.requests_to("GET", "/predictions/")) == 1
    assert await table_snapshot(bench.connection) == before


async def test_a_final_callback_for_a_waiting_job_is_heard_without_reading_the_table(
    bench: Bench,
) -> None:
    jobs = await bench.service(callbacks=True, jobs=SLOW_POLLS)
    job = await awaiting_its_result(bench, jobs, processing_seconds=0.3)
    headers, body = signed_callback(bench, job, "succeeded")
    await asyncio.sleep(0.4)  # the prediction has ended; the next poll is a minute away
    with counting_round_trips(bench.connection) as trips:
        outcome = await jobs.handle_callback(
            "replicate", job_id=job.id, token=job.callback_token, headers=headers, body=body
        )

    assert outcome == "accepted"
    assert trips.count == 0
    assert (await bench.ended(job.id)).state is JobState.DELIVERED


async def test_a_flood_of_callbacks_asks_the_provider_once_per_gap(bench: Bench) -> None:
    jobs = await bench.service(callbacks=True, jobs=SLOW_POLLS)
    job = await awaiting_its_result(bench, jobs)

    async def callback(copy: int) -> None:
        """A copy with an id of its own, as a proxy repeating itself would send."""
        headers, body = signed_callback(bench, job, "succeeded")
        key = signing_key(bench.fake.webhook_secret)
        timestamp = int(headers["webhook-timestamp"])
        headers["webhook-id"] = f"msg_{copy}"
        headers["webhook-signature"] = "v1," + sign(key, f"msg_{copy}", timestamp, body)
        await jobs.handle_callback(
            "replicate", job_id=job.id, token=job.callback_token, headers=headers, body=body
        )

    await callback(0)
    async with asyncio.timeout(10.0):  # the first callback is asked about at once
        while len(bench.fake.requests_to("GET", "/predictions/")) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    flood_began = time.monotonic()
    for copy in range(1, 20):
        await callback(copy)
    await asyncio.sleep(0.1)  # time for polls, were they woken
    gaps = int((time.monotonic() - flood_began) / WAKE_GAP_SECONDS)

    # Without the gap every copy would poll; with it, one more per gap gone by at most (none
    # on an idle machine, where the flood takes a fraction of a second).
    assert 2 <= len(bench.fake.requests_to("GET", "/predictions/")) <= 2 + gaps


async def test_a_job_whose_task_died_on_a_locked_database_carries_on_once_it_is_back(
    bench: Bench,
) -> None:
    await bench.connection.execute("PRAGMA busy_timeout = 50")
    bench.fake.script_create(ScriptedResponse.slow(0.5))  # the answer comes back locked out
    jobs = await bench.service()
    await jobs.start()
    job = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
    async with asyncio.timeout(10.0):
        while not bench.fake.requests_to("POST", "/models/"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    with contextlib.closing(sqlite3.connect(bench.database, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # held while the create's answer is recorded
        await asyncio.sleep(1.0)
        other.execute("COMMIT")
    ended = await bench.ended(job.id)

    assert (ended.state, ended.charge) == (JobState.DELIVERED, Charge.COMMITTED)
    assert bench.fake.create_count == 1


async def test_a_reply_that_cannot_be_shown_does_not_stop_the_job(bench: Bench) -> None:
    jobs = await bench.service()
    await jobs.start()

    async def reply(submission: Submission, position: int | None) -> None:
        raise ConnectionResetError("Discord went away mid-edit")

    submission = await jobs.submit(a_request(), a_target(), A_MEMBER, reply=reply)

    assert (await bench.ended(submission.jobs[0].id)).state is JobState.DELIVERED


async def test_a_waiting_member_sees_their_place_move_up(bench: Bench) -> None:
    bench.fake.processing_seconds = 0.3
    jobs = await bench.service(queue={"max_running_per_guild": 1}, progress_interval=0.05)
    await jobs.start()
    first, _, third = [
        (
            await jobs.submit(
                a_request(),
                a_target(user_id=USER_ID + n, interaction_token=f"interaction-{n}"),
                Member(guild_id=GUILD_ID, user_id=USER_ID + n),
            )
        ).jobs[0]
        for n in range(3)
    ]
    assert jobs.queue_position(third.id) == 2

    await bench.ended(first.id)
    async with asyncio.timeout(10.0):
        while (third.id, 1) not in bench.publisher.progress:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    edits = [position for job_id, position in bench.publisher.progress if job_id == third.id]
    assert edits[0] == 1  # the first edit is the move: none repeated the place the reply showed


async def test_a_create_answered_with_another_jobs_prediction_fails_refunded(
    bench: Bench,
) -> None:
    jobs = await bench.service()
    first = await run_one(bench, jobs)
    assert first.provider_job_id is not None
    taken = {"id": first.provider_job_id, "status": "starting", "output": None}
    bench.fake.script_create(ScriptedResponse.json(201, taken))

    second = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
    ended = await bench.ended(second.id)

    assert (ended.charge, ended.error) == (Charge.RELEASED, ANSWER_OF_ANOTHER_JOB)
    assert ended.provider_job_id is None


async def test_a_job_costs_at_most_twelve_round_trips_from_submit_to_posted(
    bench: Bench, tmp_path: Path
) -> None:
    jobs = await bench.service()
    await jobs.start()
    # The test watches through a connection of its own, so only the bot's trips count.
    watching = await open_database(tmp_path / "bot.sqlite3")
    watcher = JobRepository(watching)
    try:
        with counting_round_trips(bench.connection) as trips:
            job = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
            async with asyncio.timeout(10.0):
                # A row announces nothing: it is watched.
                while (seen := await watcher.get(job.id)) is None or seen.state not in ENDED:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
    finally:
        await watching.close()

    assert seen.state is JobState.DELIVERED
    assert trips.count <= 12, trips.calls


async def test_throttled_create_is_sent_again_and_creates_once(bench: Bench) -> None:
    bench.fake.script_create(throttled(retry_after=0.05))
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.state is JobState.DELIVERED
    assert len(bench.fake.requests_to("POST", "/models/")) == 2
    assert bench.fake.create_count == 1
    assert job.attempts == 2


async def test_create_timeout_fails_the_job_without_sending_it_again(bench: Bench) -> None:
    bench.fake.script_create(ScriptedResponse.slow(1.0))
    jobs = await bench.service(provider={"request_timeout_seconds": 0.3})

    job = await run_one(bench, jobs)

    assert job.error == UNCONFIRMED_CREATE
    assert len(bench.fake.requests_to("POST", "/models/")) == 1
    assert bench.publisher.failed_jobs == [job.id]


async def test_html_error_page_on_create_fails_the_job_without_sending_it_again(
    bench: Bench,
) -> None:
    bench.fake.script_create(ScriptedResponse.html(502))
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.error == UNCONFIRMED_CREATE
    assert len(bench.fake.requests_to("POST", "/models/")) == 1


async def test_rejected_create_fails_with_the_providers_reason_hidden(bench: Bench) -> None:
    bench.fake.script_create(problem(422, "input.prompt: Required"))
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.state is JobState.DELIVERED
    assert job.error is not None
    assert "input.prompt" not in job.error


async def test_safety_block_fails_with_a_friendly_message(bench: Bench) -> None:
    bench.fake.fail_next()
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.error == SafetyBlocked().user_message
    assert job.image_paths == ()


async def test_job_past_its_deadline_is_canceled_at_the_provider_and_failed(
    bench: Bench,
) -> None:
    bench.fake.processing_seconds = 60
    jobs = await bench.service(tiers={"fast": {"deadline_seconds": 0.5}})

    job = await run_one(bench, jobs)

    assert job.error == DeadlineExceeded().user_message
    assert len(bench.fake.requests_to("POST", "/cancel")) == 1


async def test_output_gone_before_download_fails_the_job(bench: Bench) -> None:
    bench.fake.script_delivery(ScriptedResponse(404, b"Not Found", "text/plain"))
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.error == ResultUnavailable().user_message


async def test_transient_poll_failures_are_retried(bench: Bench) -> None:
    bench.fake.script_get(ScriptedResponse.html(503), throttled())
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert job.state is JobState.DELIVERED
    assert job.error is None


async def test_empty_prompt_is_refused_and_stores_nothing(bench: Bench) -> None:
    jobs = await bench.service()

    with pytest.raises(InvalidRequest, match="prompt is empty"):
        await jobs.submit(a_request("   "), a_target(), A_MEMBER)

    assert await bench.repository.unfinished() == []


@pytest.mark.parametrize(
    "prompt",
    [
        "\u200b\u200c\u200d\u2060",  # zero-width space, non-joiner, joiner, word joiner
        "\ufeff \u00a0\u3000",  # byte order mark and unusual spaces
        "\u3164\u2800",  # Hangul filler and the braille blank: letters that show nothing
        "\u202e\u2066\u00ad",  # direction overrides and a soft hyphen
        "\ufe0f\u034f\U000e0100",  # variation selectors and a grapheme joiner, on nothing
    ],
)
async def test_a_prompt_of_only_invisible_characters_is_empty(bench: Bench, prompt: str) -> None:
    jobs = await bench.service()

    with pytest.raises(InvalidRequest, match="prompt is empty"):
        await jobs.submit(a_request(prompt), a_target(), A_MEMBER)

    assert await bench.repository.unfinished() == []


@pytest.mark.parametrize("prompt", ["\u2764\ufe0f", "\u732b", "e\u0301", "\u0661"])
def test_an_emoji_a_han_character_an_accent_or_a_digit_is_a_prompt(prompt: str) -> None:
    assert not is_blank(prompt)


async def test_an_invisible_negative_prompt_counts_as_none(bench: Bench) -> None:
    jobs = await bench.service()

    submission = await jobs.submit(a_request(negative_prompt="\u200b\u200b"), a_target(), A_MEMBER)

    assert submission.jobs[0].request.negative_prompt is None


async def test_over_long_prompt_is_refused_with_the_limit(bench: Bench) -> None:
    jobs = await bench.service()

    with pytest.raises(InvalidRequest, match="1001 characters long; the limit is 1000"):
        await jobs.submit(a_request("x" * 1001), a_target(), A_MEMBER)

    assert await bench.repository.unfinished() == []


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({"image_count": 5}, "1 to 4 images"),
        ({"image_count": 0}, "1 to 4 images"),
        ({"seed": -1}, "seed must be a whole number"),
        ({"seed": 2**32}, "seed must be a whole number"),
        ({"negative_prompt": "x" * 1001}, "negative prompt is 1001 characters"),
    ],
)
async def test_options_out_of_range_are_refused_and_store_nothing(
    bench: Bench, request_fields: dict[str, object], message: str
) -> None:
    jobs = await bench.service()

    with pytest.raises(InvalidRequest, match=message):
        await jobs.submit(a_request("a lighthouse", **request_fields), a_target(), A_MEMBER)

    assert await bench.repository.unfinished() == []


async def test_stop_lets_a_create_in_flight_record_its_prediction(bench: Bench) -> None:
    bench.fake.script_create(ScriptedResponse.slow(0.3))
    jobs = await bench.service()
    await jobs.start()
    job = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
    await bench.reaches(job.id, (JobState.SUBMITTING,))

    await jobs.stop()

    stopped = await bench.repository.get(job.id)
    assert stopped is not None
    assert stopped.state is JobState.SUBMITTED
    assert stopped.provider_job_id in bench.fake.predictions


# ---------------------------------------------------------------------- restart


async def test_restart_reattaches_a_submitted_job_without_creating_again(
    bench: Bench, http: HttpClient
) -> None:
    job = await stored_job(
        bench.repository, a_request(), a_target(), callback_token="t", now=time.time()
    )
    created = await a_replicate_provider(bench.fake, http).start(job.request, callback_url=None)
    await bench.repository.mark_submitting(job.id, provider="replicate", now=time.time())
    await bench.repository.mark_submitted(
        job.id, provider="replicate", provider_job_id=created.id, now=time.time()
    )
    jobs = await bench.service()

    await jobs.start()
    ended = await bench.ended(job.id)

    assert bench.publisher.images == [(job.id, [ended.image_paths[0].name], [])]
    assert bench.fake.create_count == 1


async def test_restart_posts_a_succeeded_job_that_was_never_posted(bench: Bench) -> None:
    job = await stored_job(
        bench.repository, a_request(), a_target(), callback_token="t", now=time.time()
    )
    await move_to_submitted(bench.repository, job.id)
    paths = await bench.images.save(
        f"job-{job.id}", [spooled(bench.images, b"\xff\xd8\xff\xe0", "jpg")]
    )
    await bench.repository.mark_succeeded(job.id, image_paths=paths, now=time.time())
    jobs = await bench.service()

    await jobs.start()

    assert (await bench.ended(job.id)).state is JobState.DELIVERED
    assert bench.publisher.images == [(job.id, [paths[0].name], [])]
    assert bench.fake.requests == []


async def test_restart_takes_queued_jobs_oldest_first(bench: Bench) -> None:
    queued = [
        await stored_job(
            bench.repository,
            a_request(f"prompt {n}"),
            a_target(),
            callback_token=f"t{n}",
            now=time.time() + n,
        )
        for n in range(3)
    ]
    jobs = await bench.service(queue={"max_running_per_guild": 1})

    await jobs.start()
    for job in queued:
        await bench.ended(job.id)

    prompts = [r.json()["input"]["prompt"] for r in bench.fake.requests_to("POST", "/models/")]
    assert prompts == ["prompt 0", "prompt 1", "prompt 2"]


# ---------------------------------------------------------------------- queue


async def submit_as(jobs: JobService, user_id: int, prompt: str) -> Job:
    member = Member(guild_id=GUILD_ID, user_id=user_id)
    return (await jobs.submit(a_request(prompt), a_target(user_id=user_id), member)).jobs[0]


async def test_members_take_turns_in_the_queue(bench: Bench) -> None:
    jobs = await bench.service(queue={"max_running_per_guild": 1})
    queued = [await submit_as(jobs, USER_ID, f"a{n}") for n in range(3)]
    queued.append(await submit_as(jobs, USER_ID + 1, "b0"))

    await jobs.start()
    for job in queued:
        await bench.ended(job.id)

    prompts = [r.json()["input"]["prompt"] for r in bench.fake.requests_to("POST", "/models/")]
    assert prompts == ["a0", "b0", "a1", "a2"]


async def test_a_job_waiting_past_its_deadline_fails_and_is_refunded(bench: Bench) -> None:
    bench.fake.processing_seconds = 60
    jobs = await bench.service(
        queue={"max_running_per_guild": 1}, tiers={"fast": {"deadline_seconds": 1.0}}
    )
    await jobs.start()
    # The running job's own tier has the default deadline, so it holds the only slot.
    member = Member(guild_id=GUILD_ID, user_id=USER_ID)
    await jobs.submit(a_request("first", tier=Tier.STANDARD), a_target(), member)
    waiting = await submit_as(jobs, USER_ID, "second")

    ended = await bench.ended(waiting.id)

    assert ended.error == DeadlineExceeded().user_message
    assert ended.charge is Charge.RELEASED
    assert bench.fake.create_count == 1


async def test_the_member_hears_when_their_job_starts(bench: Bench) -> None:
    jobs = await bench.service()

    job = await run_one(bench, jobs)

    assert (job.id, None) in bench.publisher.progress


async def test_a_job_made_before_its_reply_is_shown_never_says_it_is_generating(
    bench: Bench,
) -> None:
    bench.fake.start_delay = bench.fake.processing_seconds = 0.0  # the create answers "done"
    jobs = await bench.service()
    await jobs.start()

    async def reply(submission: Submission, position: int | None) -> None:
        await bench.reaches(submission.jobs[0].id, (JobState.SUCCEEDED,))

    submission = await jobs.submit(a_request(), a_target(), A_MEMBER, reply=reply)
    ended = await bench.ended(submission.jobs[0].id)

    assert ended.state is JobState.DELIVERED
    assert (ended.id, None) not in bench.publisher.progress
    assert [job_id for job_id, _, _ in bench.publisher.images] == [ended.id]


async def test_canceling_a_running_job_cancels_it_at_the_provider(bench: Bench) -> None:
    bench.fake.processing_seconds = 60
    jobs = await bench.service()
    await jobs.start()
    job = (await jobs.submit(a_request(), a_target(), A_MEMBER)).jobs[0]
    submitted = await bench.reaches(job.id, (JobState.SUBMITTED,))

    canceled = await jobs.cancel(job.id, A_MEMBER)

    assert (canceled.state, canceled.charge) == (JobState.CANCELED, Charge.RELEASED)
    [cancel] = bench.fake.requests_to("POST", "/cancel")
    assert submitted.provider_job_id is not None
    assert submitted.provider_job_id in cancel.path
    assert bench.publisher.failed_jobs == []


async def test_restart_finishes_every_unfinished_job_exactly_once(
    bench: Bench, http: HttpClient
) -> None:
    repository = bench.repository
    now = time.time()

    async def job_in(state: JobState, prompt: str) -> Job:
        job = await stored_job(repository, a_request(prompt), callback_token=prompt, now=now)
        if state is JobState.QUEUED:
            return job
        await repository.mark_submitting(job.id, provider="replicate", now=now)
        if state is JobState.SUBMITTING:
            return job
        created = await a_replicate_provider(bench.fake, http).start(job.request, callback_url=None)
        await repository.mark_submitted(
            job.id, provider="replicate", provider_job_id=created.id, now=now
        )
        if state is JobState.SUCCEEDED:
            paths = await bench.images.save(
                f"job-{job.id}", [spooled(bench.images, b"\xff\xd8\xff", "jpg")]
            )
            await repository.mark_succeeded(job.id, image_paths=paths, now=now)
        elif state in (JobState.FAILED, JobState.DELIVERED):
            await repository.mark_failed(job.id, error="blocked", now=now)
            if state is JobState.DELIVERED:
                await repository.mark_delivered(job.id, now=now)
        elif state is JobState.CANCELED:
            await repository.mark_canceled(job.id, now=now)
        return job

    states = [
        JobState.QUEUED,
        JobState.SUBMITTING,
        JobState.SUBMITTED,
        JobState.SUCCEEDED,
        JobState.FAILED,
        JobState.DELIVERED,
        JobState.CANCELED,
    ]
    jobs_by_state = {state: await job_in(state, state.value) for state in states}
    creates_before = bench.fake.create_count
    service = await bench.service()

    await service.start()
    for state in states[:5]:
        await bench.ended(jobs_by_state[state].id)

    posted = [job_id for job_id, _, _ in bench.publisher.images]
    assert sorted(posted) == sorted(
        [jobs_by_state[s].id for s in (JobState.QUEUED, JobState.SUBMITTED, JobState.SUCCEEDED)]
    )
    assert sorted(bench.publisher.failed_jobs) == sorted(
        [jobs_by_state[s].id for s in (JobState.SUBMITTING, JobState.FAILED)]
    )
    assert bench.fake.create_count == creates_before + 1  # only the queued job was sent


async def test_canceling_the_last_unfinished_image_of_a_request_posts_the_others(
    bench: Bench,
) -> None:
    jobs = await bench.service()
    made, waiting = await bench.repository.create(
        a_request(), a_target(), callback_token="t", now=1, reservation=a_reservation(jobs=2)
    )
    await move_to_submitted(bench.repository, made.id)
    image, _ = render_image("a red fox", "1:1", png=False)
    paths = await bench.images.save(f"job-{made.id}", [spooled(bench.images, image, "jpg")])
    await bench.repository.mark_succeeded(made.id, image_paths=paths, now=2)

    await jobs.cancel(waiting.id, A_MEMBER)

    assert bench.publisher.posts == [[made.id]]
    posted = await bench.repository.get(made.id)
    assert posted is not None
    assert posted.state is JobState.DELIVERED
