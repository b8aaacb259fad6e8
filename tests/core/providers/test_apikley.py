"""The Apikley client against the fake Apikley's real wire format (providers.md §3, §6).

The fake runs on a hand-moved clock, so a task's stage is set by the test and nothing waits
for the wall clock; only callbacks are awaited, on the fake's own delivery condition.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from multidict import CIMultiDict
from PIL import Image as PillowImage
from pydantic import SecretStr

from bot.core.config import ApikleyProviderSettings
from bot.core.domain import AspectRatio, GenerationRequest, Option, OutputFormat, Tier
from bot.core.errors import (
    CallbackRejected,
    GenerationFailed,
    ProviderAuthError,
    ProviderError,
    ProviderMisconfigured,
    ProviderOutOfCredits,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    ResultUnavailable,
    SafetyBlocked,
)
from bot.core.providers.apikley import ApikleyProvider, UnknownOrInvalid
from bot.core.providers.base import CallbackProof, ProviderJob, ProviderStatus
from bot.core.providers.http import HttpClient
from bot.core.webhooks import sign_task, verify_task_signature
from tests.factories import ManualClock, a_request, an_apikley_provider
from tests.fakes.fake_apikley import (
    FEATURE_DISABLED,
    FIELD_REQUIRED,
    INSUFFICIENT_CREDITS,
    MAINTENANCE,
    RATE_LIMITED,
    SERVER_ERROR,
    UNAUTHORIZED,
    VALIDATION_ERROR,
    FakeApikley,
    envelope,
    sign,
)
from tests.fakes.loopback import IMAGEN_PIXELS, Receiver, ScriptedResponse

START = 1_769_670_760.0
HMAC_KEY = "test-webhook-hmac-key"
CALLBACK = "https://bot.example.com/callbacks/apikley?job=1&token=t"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeApikley]:
    async with FakeApikley(clock=clock) as fake:
        yield fake


def sent_body(fake: FakeApikley) -> object:
    [sent] = fake.requests_to("POST", "/api/v1/jobs/createTask")
    return sent.json()


async def finished(
    provider: ApikleyProvider,
    fake: FakeApikley,
    clock: ManualClock,
    request: GenerationRequest | None = None,
) -> ProviderJob:
    """Start a task and fetch it once the fake's clock says it is over."""
    created = await provider.start(request or a_request(), callback_url=None)
    clock.now = fake.tasks[created.id].finished + 1
    return await provider.fetch(created.id)


async def delivered_callback(
    fake: FakeApikley, provider: ApikleyProvider, clock: ManualClock, receiver: Receiver
) -> tuple[dict[str, str], bytes]:
    """The headers and body of the callback the fake really posted for one finished task."""
    created = await provider.start(a_request(), callback_url=receiver.url)
    clock.now = fake.tasks[created.id].finished + 1
    await fake.wait_for_callbacks(1)
    [(headers, body)] = receiver.received
    return headers, body


# ---------------------------------------------------------------------- start


async def test_fast_sends_num_images_as_a_string_and_the_seed_as_an_integer(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)
    request = a_request(
        tier=Tier.FAST,
        image_count=3,
        seed=42,
        negative_prompt="fog",
        aspect_ratio=AspectRatio.SQUARE,
    )

    await provider.start(request, callback_url=None)

    assert sent_body(fake) == {
        "model": "google/imagen4-fast",
        "input": {
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "fog",
            "aspect_ratio": "1:1",
            "num_images": "3",
            "seed": 42,
        },
    }


async def test_fast_without_a_seed_sends_no_seed_and_an_empty_negative_prompt(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(tier=Tier.FAST), callback_url=None)

    assert sent_body(fake) == {
        "model": "google/imagen4-fast",
        "input": {
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "",
            "aspect_ratio": "16:9",
            "num_images": "1",
        },
    }


@pytest.mark.parametrize(
    ("tier", "model"), [(Tier.STANDARD, "google/imagen4"), (Tier.ULTRA, "google/imagen4-ultra")]
)
async def test_standard_and_ultra_send_the_seed_as_a_string_and_no_num_images(
    fake: FakeApikley, http: HttpClient, tier: Tier, model: str
) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(tier=tier, seed=7, image_count=1), callback_url=None)

    assert sent_body(fake) == {
        "model": model,
        "input": {
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "",
            "aspect_ratio": "16:9",
            "seed": "7",
        },
    }


@pytest.mark.parametrize("tier", [Tier.STANDARD, Tier.ULTRA])
async def test_standard_and_ultra_without_a_seed_send_an_empty_string_seed(
    fake: FakeApikley, http: HttpClient, tier: Tier
) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(tier=tier), callback_url=None)

    body = sent_body(fake)
    assert isinstance(body, dict)
    assert body["input"]["seed"] == ""
    assert "num_images" not in body["input"]


async def test_seed_zero_on_standard_is_sent_as_the_string_zero(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(tier=Tier.STANDARD, seed=0), callback_url=None)

    body = sent_body(fake)
    assert isinstance(body, dict)
    assert body["input"]["seed"] == "0"


async def test_callback_url_is_sent_when_given(fake: FakeApikley, http: HttpClient) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(), callback_url=CALLBACK)

    body = sent_body(fake)
    assert isinstance(body, dict)
    assert body["callBackUrl"] == CALLBACK


async def test_no_callback_url_is_sent_when_none_is_given(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(), callback_url=None)

    body = sent_body(fake)
    assert isinstance(body, dict)
    assert "callBackUrl" not in body


async def test_start_sends_the_api_key_as_a_bearer_token(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.start(a_request(), callback_url=None)

    [sent] = fake.requests_to("POST", "/api/v1/jobs/createTask")
    assert sent.headers["Authorization"] == f"Bearer {fake.token}"


@pytest.mark.parametrize("tier", list(Tier))
async def test_start_returns_a_pending_job_with_the_task_id(
    fake: FakeApikley, http: HttpClient, tier: Tier
) -> None:
    provider = an_apikley_provider(fake, http)

    created = await provider.start(a_request(tier=tier, seed=5), callback_url=CALLBACK)

    assert created.status is ProviderStatus.PENDING
    assert list(fake.tasks) == [created.id]


async def test_create_answered_without_a_task_id_is_unavailable_and_maybe_sent(
    fake: FakeApikley, http: HttpClient
) -> None:
    fake.script_create(envelope(200, "success", None))
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderUnavailable) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.request_was_sent


async def test_fake_validation_error_is_a_rejection_that_is_not_the_providers_fault(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http, models={"fast": "google/imagen-9"})

    with pytest.raises(ProviderRejected) as raised:
        await provider.start(a_request(), callback_url=None)

    assert not raised.value.provider_fault
    assert "model must be one of" in (raised.value.detail or "")
    assert fake.create_count == 0


async def test_create_over_the_fakes_rate_limit_is_rate_limited_and_not_queued(
    http: HttpClient, clock: ManualClock
) -> None:
    async with FakeApikley(clock=clock, create_limit=(1, 10.0)) as fake:
        provider = an_apikley_provider(fake, http)
        await provider.start(a_request(), callback_url=None)

        with pytest.raises(ProviderRateLimited):
            await provider.start(a_request(), callback_url=None)

        assert fake.create_count == 1


async def test_rate_limit_carries_retry_after(fake: FakeApikley, http: HttpClient) -> None:
    fake.script_create(
        ScriptedResponse.json(200, {"code": 429, "msg": "Rate limit exceeded"}, retry_after=3)
    )
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderRateLimited) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.retry_after == 3


# ---------------------------------------------------------------------- envelope errors


@pytest.mark.parametrize(
    ("scripted", "expected"),
    [
        (UNAUTHORIZED, ProviderAuthError),
        (INSUFFICIENT_CREDITS, ProviderOutOfCredits),
        (RATE_LIMITED, ProviderRateLimited),
        (MAINTENANCE, ProviderUnavailable),
        (SERVER_ERROR, ProviderUnavailable),
        (VALIDATION_ERROR, UnknownOrInvalid),
        (FEATURE_DISABLED, ProviderMisconfigured),
        (ScriptedResponse.html(502), ProviderUnavailable),
    ],
    ids=["401", "402", "429", "455", "500", "422", "505", "html-502"],
)
async def test_create_errors_map_to_the_vocabulary(
    fake: FakeApikley, http: HttpClient, scripted: ScriptedResponse, expected: type[ProviderError]
) -> None:
    fake.script_create(scripted)
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderError) as raised:
        await provider.start(a_request(), callback_url=None)

    assert type(raised.value) is expected


async def test_envelope_errors_arrive_with_http_200(fake: FakeApikley, http: HttpClient) -> None:
    provider = an_apikley_provider(fake, http, api_key="apikley_wrong_key")

    with pytest.raises(ProviderAuthError) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.detail is not None
    assert raised.value.detail.startswith("code 401: Unauthorized")


async def test_maintenance_is_unavailable_and_known_not_to_have_been_sent(
    fake: FakeApikley, http: HttpClient
) -> None:
    fake.script_create(MAINTENANCE)
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderUnavailable) as raised:
        await provider.start(a_request(), callback_url=None)

    assert not raised.value.request_was_sent


@pytest.mark.parametrize("scripted", [SERVER_ERROR, FIELD_REQUIRED], ids=["500", "500-validation"])
async def test_server_error_is_unavailable_and_maybe_sent(
    fake: FakeApikley, http: HttpClient, scripted: ScriptedResponse
) -> None:
    fake.script_create(scripted)
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderUnavailable) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.request_was_sent
    assert (raised.value.detail or "").startswith("code 500: ")


async def test_validation_envelope_is_a_rejection_that_is_not_the_providers_fault(
    fake: FakeApikley, http: HttpClient
) -> None:
    fake.script_create(VALIDATION_ERROR)
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderRejected) as raised:
        await provider.start(a_request(), callback_url=None)

    assert not raised.value.provider_fault


async def test_html_page_with_http_200_is_unavailable(fake: FakeApikley, http: HttpClient) -> None:
    fake.script_create(ScriptedResponse.html(200))
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderUnavailable):
        await provider.start(a_request(), callback_url=None)


async def test_message_key_envelope_error_parses(fake: FakeApikley, http: HttpClient) -> None:
    fake.script_create(envelope(402, "Insufficient Credits", message_key="message"))
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderOutOfCredits) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.detail == "code 402: Insufficient Credits"


# ---------------------------------------------------------------------- fetch and download


async def test_unfinished_task_is_pending_through_every_stage(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http)
    created = await provider.start(a_request(), callback_url=None)
    task = fake.tasks[created.id]

    stages = []
    for moment in (task.created, task.queued_at, task.generating_at):
        clock.now = moment
        stages.append((task.state(moment), (await provider.fetch(created.id)).status))

    assert stages == [
        ("waiting", ProviderStatus.PENDING),
        ("queuing", ProviderStatus.PENDING),
        ("generating", ProviderStatus.PENDING),
    ]


async def test_fetch_polls_record_info_with_the_task_id(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)
    created = await provider.start(a_request(), callback_url=None)

    await provider.fetch(created.id)

    [poll] = fake.requests_to("GET", "/recordInfo")
    assert poll.path == f"/api/v1/jobs/recordInfo?taskId={created.id}"
    assert poll.headers["Authorization"] == f"Bearer {fake.token}"


async def test_finished_fast_task_gives_one_url_per_image(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http)

    snapshot = await finished(provider, fake, clock, a_request(tier=Tier.FAST, image_count=3))

    assert snapshot.status is ProviderStatus.SUCCEEDED
    assert len(snapshot.output_urls) == 3
    assert snapshot.failure is None


@pytest.mark.parametrize("tier", [Tier.STANDARD, Tier.ULTRA])
async def test_finished_standard_and_ultra_tasks_give_one_url(
    fake: FakeApikley, http: HttpClient, clock: ManualClock, tier: Tier
) -> None:
    provider = an_apikley_provider(fake, http)

    snapshot = await finished(provider, fake, clock, a_request(tier=tier))

    assert snapshot.status is ProviderStatus.SUCCEEDED
    assert len(snapshot.output_urls) == 1


def size_of(path: Path) -> tuple[int, int]:
    with PillowImage.open(path) as picture:
        return picture.size


async def test_download_returns_one_real_png_per_image_at_imagen_size(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http)
    snapshot = await finished(provider, fake, clock, a_request(image_count=3))

    images = await provider.download(snapshot)

    assert [image.extension for image in images] == ["png", "png", "png"]
    assert {size_of(image.path) for image in images} == {IMAGEN_PIXELS["16:9"]}
    assert len({image.path.read_bytes() for image in images}) == 3


async def test_expired_result_files_are_unavailable(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http)
    snapshot = await finished(provider, fake, clock)
    fake.expire_files()

    with pytest.raises(ResultUnavailable):
        await provider.download(snapshot)


async def test_message_key_record_parses(http: HttpClient, clock: ManualClock) -> None:
    async with FakeApikley(clock=clock, message_key="message") as fake:
        provider = an_apikley_provider(fake, http)

        snapshot = await finished(provider, fake, clock)

    assert snapshot.status is ProviderStatus.SUCCEEDED
    assert len(snapshot.output_urls) == 1


async def test_prohibited_content_failure_is_a_safety_block(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    fake.fail_next()
    provider = an_apikley_provider(fake, http)

    snapshot = await finished(provider, fake, clock)

    assert snapshot.status is ProviderStatus.FAILED
    assert isinstance(snapshot.failure, SafetyBlocked)
    assert "prohibited content" in (snapshot.failure.detail or "")


async def test_other_failure_is_a_generation_failure_not_a_safety_block(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    fake.fail_next("500", "Internal server error")
    provider = an_apikley_provider(fake, http)

    snapshot = await finished(provider, fake, clock)

    assert snapshot.status is ProviderStatus.FAILED
    assert type(snapshot.failure) is GenerationFailed
    assert snapshot.failure.detail == "failCode 500: Internal server error"


async def test_failure_with_a_null_fail_message_is_a_generation_failure(
    fake: FakeApikley, http: HttpClient
) -> None:
    fake.script_record(
        envelope(
            200, "success", {"taskId": "t1", "state": "fail", "failCode": None, "failMsg": None}
        )
    )
    provider = an_apikley_provider(fake, http)

    snapshot = await provider.fetch("t1")

    assert snapshot.status is ProviderStatus.FAILED
    assert type(snapshot.failure) is GenerationFailed


async def test_success_without_result_urls_is_a_failure(
    fake: FakeApikley, http: HttpClient
) -> None:
    fake.script_record(
        envelope(200, "success", {"taskId": "t1", "state": "success", "resultJson": ""})
    )
    provider = an_apikley_provider(fake, http)

    snapshot = await provider.fetch("t1")

    assert snapshot.status is ProviderStatus.FAILED
    assert type(snapshot.failure) is GenerationFailed


async def test_unknown_state_is_still_pending(fake: FakeApikley, http: HttpClient) -> None:
    fake.script_record(envelope(200, "success", {"taskId": "t1", "state": "uploading"}))
    provider = an_apikley_provider(fake, http)

    snapshot = await provider.fetch("t1")

    assert snapshot.status is ProviderStatus.PENDING


async def test_unknown_task_is_failed_not_an_exception(fake: FakeApikley, http: HttpClient) -> None:
    provider = an_apikley_provider(fake, http)

    snapshot = await provider.fetch("task_google_never_created")

    assert snapshot.id == "task_google_never_created"
    assert snapshot.status is ProviderStatus.FAILED
    assert type(snapshot.failure) is GenerationFailed
    assert "recordInfo is null" in (snapshot.failure.detail or "")


async def test_rate_limited_poll_raises_rather_than_failing_the_task(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)
    created = await provider.start(a_request(), callback_url=None)
    fake.script_record(RATE_LIMITED)

    with pytest.raises(ProviderRateLimited):
        await provider.fetch(created.id)


@pytest.mark.parametrize("status", [503, 404])
async def test_poll_of_a_gateway_page_is_unavailable_not_a_verdict(
    fake: FakeApikley, http: HttpClient, status: int
) -> None:
    provider = an_apikley_provider(fake, http)
    created = await provider.start(a_request(), callback_url=None)
    fake.script_record(ScriptedResponse.html(status))

    with pytest.raises(ProviderUnavailable):
        await provider.fetch(created.id)


async def test_cancel_sends_nothing(fake: FakeApikley, http: HttpClient) -> None:
    provider = an_apikley_provider(fake, http)
    created = await provider.start(a_request(), callback_url=None)

    await provider.cancel(created.id)

    assert len(fake.requests) == 1


# ---------------------------------------------------------------------- callbacks


async def test_real_callback_names_its_task(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http)
    async with Receiver() as receiver:
        headers, body = await delivered_callback(fake, provider, clock, receiver)

    proof = await provider.authenticate_callback(headers, body)

    assert proof == CallbackProof(json.loads(body)["data"]["taskId"])
    assert proof.provider_job_id in fake.tasks


async def test_real_failure_callback_names_its_task(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    fake.fail_next()
    provider = an_apikley_provider(fake, http)
    async with Receiver() as receiver:
        headers, body = await delivered_callback(fake, provider, clock, receiver)

    proof = await provider.authenticate_callback(headers, body)

    [task_id] = fake.tasks
    assert proof == CallbackProof(task_id)


async def test_callback_recorded_by_the_fake_is_accepted(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http)
    async with Receiver() as receiver:
        await delivered_callback(fake, provider, clock, receiver)
    [delivery] = fake.callback_deliveries

    proof = await provider.authenticate_callback(delivery.headers, delivery.body)

    assert proof == CallbackProof(delivery.task_id)


async def test_duplicate_callbacks_give_the_same_proof_and_no_delivery_id(
    http: HttpClient, clock: ManualClock
) -> None:
    async with FakeApikley(clock=clock, callback_copies=2) as fake:
        provider = an_apikley_provider(fake, http)
        async with Receiver() as receiver:
            created = await provider.start(a_request(), callback_url=receiver.url)
            clock.now = fake.tasks[created.id].finished + 1
            await fake.wait_for_callbacks(2)

        proofs = [await provider.authenticate_callback(h, b) for h, b in receiver.received]

    assert proofs == [CallbackProof(created.id), CallbackProof(created.id)]


async def test_callback_task_id_at_the_top_level_is_found(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)
    body = json.dumps({"taskId": "ee9c", "code": 200, "msg": "Success", "data": {}}).encode()

    assert await provider.authenticate_callback({}, body) == CallbackProof("ee9c")


async def test_callback_task_id_in_data_task_id_is_found(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)
    body = json.dumps(
        {
            "code": 200,
            "msg": "Success",
            "data": {"task_id": "ee9c", "callbackType": "task_completed"},
        }
    ).encode()

    assert await provider.authenticate_callback({}, body) == CallbackProof("ee9c")


@pytest.mark.parametrize(
    "body",
    [b"<html>not json</html>", b"\xff\xfe", b""],
    ids=["html", "not-utf8", "empty"],
)
async def test_non_json_callback_is_rejected_as_malformed(
    fake: FakeApikley, http: HttpClient, body: bytes
) -> None:
    provider = an_apikley_provider(fake, http)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback({}, body)

    assert raised.value.status == 400


@pytest.mark.parametrize(
    "payload",
    [
        {"code": 200, "msg": "Success", "data": {"state": "success"}},
        {"code": 200, "data": None},
        {"taskId": "", "data": {"taskId": 123}},
        ["ee9c"],
    ],
    ids=["no-id", "null-data", "empty-and-non-string", "not-an-object"],
)
async def test_callback_naming_no_task_is_rejected_as_malformed(
    fake: FakeApikley, http: HttpClient, payload: object
) -> None:
    provider = an_apikley_provider(fake, http)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback({}, json.dumps(payload).encode())

    assert raised.value.status == 400


async def test_signed_callback_passes_with_the_configured_key(
    http: HttpClient, clock: ManualClock
) -> None:
    async with FakeApikley(clock=clock, webhook_hmac_key=HMAC_KEY) as fake:
        provider = an_apikley_provider(fake, http, webhook_key=HMAC_KEY)
        async with Receiver() as receiver:
            headers, body = await delivered_callback(fake, provider, clock, receiver)

        proof = await provider.authenticate_callback(CIMultiDict(headers), body)

        [task_id] = fake.tasks
    assert proof == CallbackProof(task_id)


async def test_callback_signed_with_another_key_is_rejected(
    http: HttpClient, clock: ManualClock
) -> None:
    async with FakeApikley(clock=clock, webhook_hmac_key="another-key") as fake:
        provider = an_apikley_provider(fake, http, webhook_key=HMAC_KEY)
        async with Receiver() as receiver:
            headers, body = await delivered_callback(fake, provider, clock, receiver)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback(CIMultiDict(headers), body)

    assert raised.value.status == 401


async def test_unsigned_callback_is_rejected_when_a_key_is_configured(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    provider = an_apikley_provider(fake, http, webhook_key=HMAC_KEY)
    async with Receiver() as receiver:
        headers, body = await delivered_callback(fake, provider, clock, receiver)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback(CIMultiDict(headers), body)

    assert raised.value.status == 400


async def test_stale_signed_callback_is_rejected(http: HttpClient, clock: ManualClock) -> None:
    async with FakeApikley(clock=clock, webhook_hmac_key=HMAC_KEY) as fake:
        later = ManualClock(START)
        provider = an_apikley_provider(fake, http, webhook_key=HMAC_KEY, clock=later)
        async with Receiver() as receiver:
            headers, body = await delivered_callback(fake, provider, clock, receiver)
        later.now = clock.now + 301

        with pytest.raises(CallbackRejected) as raised:
            await provider.authenticate_callback(CIMultiDict(headers), body)

    assert raised.value.status == 401


async def test_signature_for_another_task_is_rejected(
    fake: FakeApikley, http: HttpClient, clock: ManualClock
) -> None:
    """KIE signs the task id, so a signature cannot be moved onto another task's callback."""
    provider = an_apikley_provider(fake, http, webhook_key=HMAC_KEY)
    timestamp = int(clock())
    headers = {
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": sign(HMAC_KEY, "task_a", timestamp),
    }
    body = json.dumps({"code": 200, "data": {"taskId": "task_b"}}).encode()

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback(headers, body)

    assert raised.value.status == 401


async def test_deeply_nested_callback_is_rejected_as_malformed(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback({}, b"[" * 1000)

    assert raised.value.status == 400


async def test_callback_without_a_task_id_is_rejected_before_its_signature(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http, webhook_key=HMAC_KEY)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback({}, b'{"code": 200, "data": {}}')

    assert raised.value.status == 400


@pytest.mark.parametrize("webhook_key", [None, HMAC_KEY])
async def test_callback_whose_task_id_is_not_ascii_is_rejected_as_malformed(
    fake: FakeApikley, http: HttpClient, webhook_key: str | None
) -> None:
    """A JSON "\\ud800" escape decodes to a lone surrogate, which no signature can encode."""
    provider = an_apikley_provider(fake, http, webhook_key=webhook_key)

    with pytest.raises(CallbackRejected, match="not ASCII") as raised:
        await provider.authenticate_callback({}, b'{"taskId": "\\ud800"}')

    assert raised.value.status == 400


async def test_authenticating_a_callback_calls_nothing(fake: FakeApikley, http: HttpClient) -> None:
    provider = an_apikley_provider(fake, http)

    await provider.authenticate_callback({}, b'{"taskId": "ee9c"}')

    assert fake.requests == []


# ---------------------------------------------------------------------- KIE signatures


def test_sign_task_reproduces_the_documented_vector() -> None:
    signature = sign_task(HMAC_KEY, "ee9c2715375b7837f8bb51d641ff5863", 1769670760)

    assert signature == "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4="


def test_sign_task_agrees_with_the_fake() -> None:
    assert sign_task("k", "task_1", 123) == sign("k", "task_1", 123)


def test_verify_task_signature_accepts_the_documented_vector() -> None:
    headers = {
        "X-Webhook-Timestamp": "1769670760",
        "X-Webhook-Signature": "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=",
    }

    verify_task_signature(HMAC_KEY, "ee9c2715375b7837f8bb51d641ff5863", headers, now=START + 299)


def test_verify_task_signature_rejects_a_non_integer_timestamp() -> None:
    headers = {"X-Webhook-Timestamp": "soon", "X-Webhook-Signature": "c2ln"}

    with pytest.raises(CallbackRejected) as raised:
        verify_task_signature(HMAC_KEY, "t", headers, now=START)

    assert raised.value.status == 400


def test_verify_task_signature_rejects_a_timestamp_from_the_future() -> None:
    headers = {
        "X-Webhook-Timestamp": str(int(START) + 301),
        "X-Webhook-Signature": sign_task(HMAC_KEY, "t", int(START) + 301),
    }

    with pytest.raises(CallbackRejected) as raised:
        verify_task_signature(HMAC_KEY, "t", headers, now=START)

    assert raised.value.status == 401


@pytest.mark.parametrize("missing", ["X-Webhook-Timestamp", "X-Webhook-Signature"])
def test_verify_task_signature_rejects_a_missing_header(missing: str) -> None:
    headers = {
        "X-Webhook-Timestamp": str(int(START)),
        "X-Webhook-Signature": sign_task(HMAC_KEY, "t", int(START)),
    }
    del headers[missing]

    with pytest.raises(CallbackRejected) as raised:
        verify_task_signature(HMAC_KEY, "t", headers, now=START)

    assert raised.value.status == 400


# ---------------------------------------------------------------------- check_key


async def test_check_key_accepts_the_right_key_and_creates_nothing(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http)

    assert await provider.check_key()

    assert fake.create_count == 0
    assert fake.requests_to("POST", "/createTask") == []


async def test_check_key_refuses_a_wrong_key_and_creates_nothing(
    fake: FakeApikley, http: HttpClient
) -> None:
    provider = an_apikley_provider(fake, http, api_key="apikley_wrong_key")

    with pytest.raises(ProviderAuthError):
        await provider.check_key()

    assert fake.create_count == 0
    assert fake.requests_to("POST", "/createTask") == []


async def test_check_key_during_maintenance_is_unavailable(
    fake: FakeApikley, http: HttpClient
) -> None:
    fake.script_record(MAINTENANCE)
    provider = an_apikley_provider(fake, http)

    with pytest.raises(ProviderUnavailable):
        await provider.check_key()


# ---------------------------------------------------------------------- capabilities


def an_offline_provider(http: HttpClient) -> ApikleyProvider:
    """Capabilities are static: no server is needed to ask for them."""
    return ApikleyProvider(
        "apikley",
        ApikleyProviderSettings.model_validate({"type": "apikley"}),
        api_key=SecretStr("k"),
        webhook_key=None,
        http=http,
    )


async def test_fast_makes_up_to_four_images_and_the_other_tiers_one(http: HttpClient) -> None:
    provider = an_offline_provider(http)

    assert {tier: provider.capabilities(tier).max_images for tier in Tier} == {
        Tier.FAST: 4,
        Tier.STANDARD: 1,
        Tier.ULTRA: 1,
    }


@pytest.mark.parametrize("tier", list(Tier))
async def test_negative_prompt_and_seed_are_honoured_but_not_safety(
    http: HttpClient, tier: Tier
) -> None:
    provider = an_offline_provider(http)

    capabilities = provider.capabilities(tier)

    assert capabilities.options == {Option.NEGATIVE_PROMPT, Option.SEED}
    assert capabilities.unmet(a_request(tier=tier, chosen=frozenset({Option.SAFETY}))) == {
        Option.SAFETY
    }


@pytest.mark.parametrize("tier", list(Tier))
async def test_results_are_png_only(http: HttpClient, tier: Tier) -> None:
    provider = an_offline_provider(http)

    capabilities = provider.capabilities(tier)

    assert capabilities.output_formats == {OutputFormat.PNG}
    chosen_jpg = a_request(
        tier=tier, output_format=OutputFormat.JPG, chosen=frozenset({Option.OUTPUT_FORMAT})
    )
    assert capabilities.unmet(chosen_jpg) == {Option.OUTPUT_FORMAT}


async def test_prompts_up_to_five_thousand_characters_are_accepted(http: HttpClient) -> None:
    provider = an_offline_provider(http)

    capabilities = provider.capabilities(Tier.FAST)

    assert capabilities.accepts_prompt("x" * 5000)
    assert not capabilities.accepts_prompt("x" * 5001)


def test_polls_follow_the_documented_schedule(fake_apikley: FakeApikley, http: HttpClient) -> None:
    provider = an_apikley_provider(fake_apikley, http)
    assert provider.poll_schedule is not None

    waits = list(itertools.islice(provider.poll_schedule.waits(), 26))

    # Every 2-3 s for the first 30 s, 5-10 s until 2 min, then 15-30 s (providers.md §3.3).
    assert waits == [2.5] * 12 + [7.5] * 12 + [20.0] * 2
