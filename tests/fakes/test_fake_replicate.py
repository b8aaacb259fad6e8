"""The fake Replicate keeps the promises of providers.md §6 that the client tests do not reach."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.core.webhooks import signing_key, verify_signature
from tests.fakes.fake_replicate import UNSERVED_HOST, FakeReplicate
from tests.fakes.loopback import Receiver

BODY = {
    "input": {
        "prompt": "a red fox",
        "aspect_ratio": "4:3",
        "output_format": "jpg",
        "safety_filter_level": "block_only_high",
    }
}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def create(
    session: aiohttp.ClientSession, fake: FakeReplicate, body: object, **headers: str
) -> tuple[int, dict[str, object]]:
    async with session.post(
        f"{fake.base_url}/models/google/imagen-4-fast/predictions",
        json=body,
        headers={"Authorization": f"Bearer {fake.token}", **headers},
    ) as response:
        return response.status, await response.json(content_type=None)


async def test_unknown_top_level_key_is_422(
    fake_replicate: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    status, problem = await create(session, fake_replicate, {**BODY, "num_outputs": 2})

    assert status == 422
    assert "num_outputs" in str(problem["detail"])
    assert fake_replicate.create_count == 0


async def test_unsupported_input_key_is_422(
    fake_replicate: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    body = {"input": {**BODY["input"], "seed": 7}}

    status, _ = await create(session, fake_replicate, body)

    assert status == 422


async def test_bad_enum_is_422(
    fake_replicate: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    body = {"input": {**BODY["input"], "aspect_ratio": "2:1"}}

    status, problem = await create(session, fake_replicate, body)

    assert status == 422
    assert "aspect_ratio" in str(problem["detail"])


async def test_prefer_wait_holds_until_the_prediction_succeeds(
    fake_replicate: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    status, prediction = await create(session, fake_replicate, BODY, Prefer="wait=5")

    assert status == 201
    assert prediction["status"] == "succeeded"
    assert str(prediction["output"]).startswith(fake_replicate.origin + "/delivery/")


async def test_prefer_wait_shorter_than_the_job_answers_202_in_progress(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeReplicate(processing_seconds=30) as fake:
        status, prediction = await create(session, fake, BODY, Prefer="wait=1")

    assert status == 202
    assert prediction["status"] == "processing"


async def test_terminal_webhook_is_signed_per_standard_webhooks(
    fake_replicate: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    async with Receiver([]) as receiver:
        await create(session, fake_replicate, {**BODY, "webhook": receiver.url})
        await fake_replicate.wait_for_webhook_deliveries(1)

    [(headers, body)] = receiver.received
    key = signing_key(fake_replicate.webhook_secret)
    now = fake_replicate.clock()
    assert verify_signature(key, headers, body, now=now) == headers["webhook-id"]
    assert json.loads(body)["status"] == "succeeded"


async def test_failed_webhook_is_retried_with_the_same_id(
    fake_replicate: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    async with Receiver([500]) as receiver:
        await create(session, fake_replicate, {**BODY, "webhook": receiver.url})
        await fake_replicate.wait_for_webhook_deliveries(2)

    first, second = fake_replicate.webhook_deliveries
    assert (first.status, second.status) == (500, 200)
    assert first.webhook_id == second.webhook_id


async def test_proxy_echoes_urls_on_a_host_nobody_serves(
    fake_proxy: FakeReplicate, session: aiohttp.ClientSession
) -> None:
    _, prediction = await create(session, fake_proxy, BODY)

    urls = prediction["urls"]
    assert isinstance(urls, dict)
    assert urls["get"] == f"{UNSERVED_HOST}/v1/predictions/{prediction['id']}"
