"""The Replicate client against the fake Replicate's real wire format (providers.md §1, §6)."""

from __future__ import annotations

import json
import time

import pytest
from PIL import Image as PillowImage

from bot.core.domain import AspectRatio, OutputFormat, SafetyLevel, Tier
from bot.core.errors import (
    CallbackRejected,
    CreatesNotListed,
    GenerationFailed,
    ProviderAuthError,
    ProviderMisconfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    ResultUnavailable,
    SafetyBlocked,
)
from bot.core.providers.base import CallbackProof, ProviderJob, ProviderStatus
from bot.core.providers.http import HttpClient
from bot.core.providers.replicate import MAX_LIST_PAGES, ReplicateProvider
from tests.factories import ManualClock, a_replicate_provider, a_request
from tests.fakes.fake_replicate import ABSENT, FakeReplicate, problem, throttled
from tests.fakes.loopback import ScriptedResponse

CALLBACK = "https://bot.example.com/callbacks/replicate?job=1&token=t"


async def finished(provider: ReplicateProvider, fake: FakeReplicate) -> ProviderJob:
    """Start a prediction and fetch it once the fake's clock says it is over."""
    created = await provider.start(a_request(), callback_url=None)
    prediction = fake.predictions[created.id]
    fake.clock = lambda: prediction.finished + 1
    return await provider.fetch(created.id)


async def test_create_sends_the_documented_body_and_headers(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    request = a_request(
        tier=Tier.ULTRA,
        aspect_ratio=AspectRatio.PORTRAIT,
        safety=SafetyLevel.BLOCK_ONLY_HIGH,
        output_format=OutputFormat.PNG,
    )

    created = await provider.start(request, callback_url=CALLBACK)

    assert created.status is ProviderStatus.PENDING
    [sent] = fake_replicate.requests_to("POST", "/models/google/imagen-4-ultra/predictions")
    assert sent.headers["Authorization"] == f"Bearer {fake_replicate.token}"
    assert sent.headers["Cancel-After"] == "10m"
    assert sent.json() == {
        "input": {
            "prompt": "a lighthouse at dusk",
            "aspect_ratio": "3:4",
            "output_format": "png",
            "safety_filter_level": "block_only_high",
        },
        "webhook": CALLBACK,
        "webhook_events_filter": ["completed"],
    }


async def test_create_without_callback_url_asks_for_no_webhook(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)

    await provider.start(a_request(), callback_url=None)

    [sent] = fake_replicate.requests_to("POST", "/predictions")
    assert "webhook" not in sent.json()


async def test_finished_prediction_downloads_a_real_image_at_imagen_size(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)

    snapshot = await finished(provider, fake_replicate)
    [image] = await provider.download(snapshot)

    assert snapshot.status is ProviderStatus.SUCCEEDED
    assert image.extension == "jpg"
    with PillowImage.open(image.path) as picture:
        assert picture.size == (1408, 768)


async def test_proxy_is_polled_at_its_own_base_not_at_the_echoed_urls(
    fake_proxy: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_proxy, http)

    snapshot = await finished(provider, fake_proxy)

    assert snapshot.status is ProviderStatus.SUCCEEDED
    [poll] = fake_proxy.requests_to("GET", "/predictions/")
    assert poll.path == f"/replicate/v1/predictions/{snapshot.id}"


async def test_list_output_is_accepted(fake_replicate: FakeReplicate, http: HttpClient) -> None:
    fake_replicate.output_style = "list"
    provider = a_replicate_provider(fake_replicate, http)

    snapshot = await finished(provider, fake_replicate)

    assert len(await provider.download(snapshot)) == 1


async def test_data_uri_output_is_decoded_without_a_download(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.output_style = "data_uri"
    provider = a_replicate_provider(fake_replicate, http)

    snapshot = await finished(provider, fake_replicate)
    [image] = await provider.download(snapshot)

    assert image.extension == "jpg"
    assert fake_replicate.requests_to("GET", "/delivery/") == []


async def test_bad_token_is_an_auth_error_with_replicates_detail(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http, api_key="r8_another_token")

    with pytest.raises(ProviderAuthError) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.detail == "You did not pass a valid authentication token"


async def test_validation_error_is_a_rejection_and_creates_nothing(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.script_create(problem(422, "input.prompt: Required"))
    provider = a_replicate_provider(fake_replicate, http)

    with pytest.raises(ProviderRejected) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.detail == "input.prompt: Required"
    assert fake_replicate.create_count == 0


async def test_an_unknown_model_is_a_misconfiguration_another_provider_may_not_share(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http, models={"fast": "google/imagen-9"})

    with pytest.raises(ProviderMisconfigured):
        await provider.start(a_request(), callback_url=None)


async def test_throttling_carries_retry_after(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.script_create(throttled(retry_after=7))
    provider = a_replicate_provider(fake_replicate, http)

    with pytest.raises(ProviderRateLimited) as raised:
        await provider.start(a_request(), callback_url=None)

    assert raised.value.retry_after == 7
    assert "throttled" in (raised.value.detail or "")


async def test_safety_failure_is_a_safety_block(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.fail_next()
    provider = a_replicate_provider(fake_replicate, http)

    snapshot = await finished(provider, fake_replicate)

    assert snapshot.status is ProviderStatus.FAILED
    assert isinstance(snapshot.failure, SafetyBlocked)


async def test_other_failure_is_a_generation_failure_with_the_providers_text(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.fail_next("An error occurred while processing your request (E001)")
    provider = a_replicate_provider(fake_replicate, http)

    snapshot = await finished(provider, fake_replicate)

    assert type(snapshot.failure) is GenerationFailed
    assert snapshot.failure.detail == "An error occurred while processing your request (E001)"


async def test_removed_output_is_unavailable(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    created = await provider.start(a_request(), callback_url=None)
    fake_replicate.expire(created.id)
    fake_replicate.clock = lambda: fake_replicate.predictions[created.id].finished + 1

    snapshot = await provider.fetch(created.id)

    assert isinstance(snapshot.failure, ResultUnavailable)


async def test_output_file_gone_before_download_is_unavailable(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    snapshot = await finished(provider, fake_replicate)
    fake_replicate.expire(snapshot.id)

    with pytest.raises(ResultUnavailable):
        await provider.download(snapshot)


async def test_cancel_ends_the_prediction_as_failed(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    created = await provider.start(a_request(), callback_url=None)

    await provider.cancel(created.id)
    snapshot = await provider.fetch(created.id)

    assert snapshot.status is ProviderStatus.FAILED
    assert snapshot.failure is not None
    assert snapshot.failure.detail == "prediction canceled"


async def test_prediction_not_started_before_cancel_after_is_aborted(
    http: HttpClient,
) -> None:
    clock = ManualClock()
    async with FakeReplicate(start_delay=120, clock=clock) as fake:
        provider = a_replicate_provider(fake, http, cancel_after="1m")
        created = await provider.start(a_request(), callback_url=None)
        clock.now += 61

        snapshot = await provider.fetch(created.id)

    assert snapshot.failure is not None
    assert snapshot.failure.detail == "prediction aborted"


async def test_poll_of_an_html_page_is_unavailable(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    created = await provider.start(a_request(), callback_url=None)
    fake_replicate.script_get(ScriptedResponse.html(503))

    with pytest.raises(ProviderUnavailable):
        await provider.fetch(created.id)


async def test_signed_callback_is_verified_with_the_fetched_default_secret(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    body = json.dumps({"id": "p1", "status": "succeeded"}).encode()
    now = int(fake_replicate.clock())

    first = await provider.authenticate_callback(
        fake_replicate.signature_headers("msg_1", now, body), body
    )
    second = await provider.authenticate_callback(
        fake_replicate.signature_headers("msg_2", now, body), body
    )

    assert (first, second) == (
        CallbackProof("p1", delivery_id="msg_1"),
        CallbackProof("p1", delivery_id="msg_2"),
    )
    assert len(fake_replicate.requests_to("GET", "/webhooks/default/secret")) == 1


async def test_callback_signed_with_another_secret_is_rejected(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    body = b'{"id": "p1"}'
    async with FakeReplicate() as impostor:
        headers = impostor.signature_headers("msg_1", int(fake_replicate.clock()), body)

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback(headers, body)

    assert raised.value.status == 401


async def test_unreachable_secret_endpoint_asks_for_a_retry(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http, api_key="r8_revoked")
    body = b'{"id": "p1"}'

    with pytest.raises(CallbackRejected) as raised:
        await provider.authenticate_callback(
            fake_replicate.signature_headers("msg_1", int(fake_replicate.clock()), body), body
        )

    assert raised.value.status == 503


async def test_proxy_callback_needs_no_signature_and_asks_nothing(
    fake_proxy: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_proxy, http)

    assert await provider.authenticate_callback({}, b'{"id": "p1"}') == CallbackProof("p1")
    assert fake_proxy.requests == []


# ---------------------------------------------------------------------- finding a lost create


async def test_lost_create_is_found_at_a_proxy_whose_next_links_name_another_host(
    fake_proxy: FakeReplicate, http: HttpClient
) -> None:
    fake_proxy.list_page_size = 1
    provider = a_replicate_provider(fake_proxy, http)
    sent_after = time.time()
    ours = await provider.start(a_request(), callback_url=None)
    await provider.start(a_request("a red fox"), callback_url=None)

    found = await provider.find_created(a_request(), callback_url=None, sent_after=sent_after)

    assert [job.id for job in found] == [ours.id]
    assert len(fake_proxy.requests_to("GET", "/replicate/v1/predictions?cursor=1")) == 1


async def test_lost_create_is_matched_on_its_input_when_the_list_shows_no_webhooks(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.list_shows_webhooks = False
    provider = a_replicate_provider(fake_replicate, http)
    sent_after = time.time()
    ours = await provider.start(a_request(), callback_url=CALLBACK)
    await provider.start(a_request(output_format=OutputFormat.PNG), callback_url=CALLBACK)

    found = await provider.find_created(a_request(), callback_url=CALLBACK, sent_after=sent_after)

    assert [job.id for job in found] == [ours.id]


async def test_a_listed_prediction_with_another_jobs_webhook_is_not_ours(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    sent_after = time.time()
    await provider.start(a_request(), callback_url=CALLBACK.replace("token=t", "token=other"))

    found = await provider.find_created(a_request(), callback_url=CALLBACK, sent_after=sent_after)

    assert found == []


async def test_an_endpoint_without_a_prediction_list_cannot_be_asked(
    fake_proxy: FakeReplicate, http: HttpClient
) -> None:
    fake_proxy.serves_list = False
    provider = a_replicate_provider(fake_proxy, http)

    with pytest.raises(CreatesNotListed):
        await provider.find_created(a_request(), callback_url=None, sent_after=time.time())


async def test_a_list_longer_than_the_pages_read_cannot_confirm_an_absence(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    fake_replicate.list_page_size = 1
    provider = a_replicate_provider(fake_replicate, http)
    sent_after = time.time()
    for index in range(MAX_LIST_PAGES + 1):
        await provider.start(a_request(f"another prompt {index}"), callback_url=None)

    with pytest.raises(CreatesNotListed):
        await provider.find_created(a_request(), callback_url=None, sent_after=sent_after)


@pytest.mark.parametrize(
    "created_at", [ABSENT, None, 1767225600, "yesterday"], ids=["absent", "null", "number", "text"]
)
async def test_a_listed_prediction_that_cannot_be_dated_cannot_confirm_an_absence(
    fake_replicate: FakeReplicate, http: HttpClient, created_at: object
) -> None:
    """It may be this very create, billed: "never arrived" would refund it."""
    provider = a_replicate_provider(fake_replicate, http)
    sent_after = time.time()
    ours = await provider.start(a_request(), callback_url=CALLBACK)
    fake_replicate.list_overrides[ours.id] = {"created_at": created_at}

    with pytest.raises(CreatesNotListed, match="created_at"):
        await provider.find_created(a_request(), callback_url=CALLBACK, sent_after=sent_after)


@pytest.mark.parametrize("emptied", [ABSENT, None, {}], ids=["absent", "null", "empty"])
async def test_a_listed_prediction_with_neither_webhook_nor_input_cannot_confirm_an_absence(
    fake_replicate: FakeReplicate, http: HttpClient, emptied: object
) -> None:
    fake_replicate.list_shows_webhooks = False
    provider = a_replicate_provider(fake_replicate, http)
    sent_after = time.time()
    ours = await provider.start(a_request(), callback_url=CALLBACK)
    fake_replicate.list_overrides[ours.id] = {"input": emptied}

    with pytest.raises(CreatesNotListed, match="neither webhook nor input"):
        await provider.find_created(a_request(), callback_url=CALLBACK, sent_after=sent_after)


async def test_an_undecidable_listed_prediction_does_not_hide_a_match(
    fake_replicate: FakeReplicate, http: HttpClient
) -> None:
    provider = a_replicate_provider(fake_replicate, http)
    sent_after = time.time()
    ours = await provider.start(a_request(), callback_url=CALLBACK)
    other = await provider.start(a_request("a red fox"), callback_url=None)
    fake_replicate.list_overrides[other.id] = {"created_at": ABSENT, "input": ABSENT}

    found = await provider.find_created(a_request(), callback_url=CALLBACK, sent_after=sent_after)

    assert [job.id for job in found] == [ours.id]
