"""The fake Apikley keeps the promises of providers.md §3 and §6 that the client tests rely on.

Most tests drive the fake with a hand-moved clock, so task states are checked exactly and no
test waits for a stage to pass on the wall clock.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image as PillowImage

from tests.factories import ManualClock
from tests.fakes.fake_apikley import MODELS, FakeApikley, sign
from tests.fakes.loopback import IMAGEN_PIXELS, Receiver, ScriptedResponse

START = 1_769_670_760.0
BODY: dict[str, Any] = {"model": MODELS["fast"], "input": {"prompt": "a red fox"}}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def fake_apikley(clock: ManualClock) -> AsyncIterator[FakeApikley]:
    async with FakeApikley(clock=clock) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


async def create(
    session: aiohttp.ClientSession, fake: FakeApikley, body: object, *, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        f"{fake.base_url}/api/v1/jobs/createTask",
        json=body,
        headers={"Authorization": f"Bearer {fake.token if token is None else token}"},
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def record_info(
    session: aiohttp.ClientSession, fake: FakeApikley, task_id: str
) -> dict[str, Any]:
    async with session.get(
        f"{fake.base_url}/api/v1/jobs/recordInfo",
        params={"taskId": task_id},
        headers={"Authorization": f"Bearer {fake.token}"},
    ) as response:
        assert response.status == 200
        envelope: dict[str, Any] = await response.json()
        return envelope


async def created_task_id(
    session: aiohttp.ClientSession, fake: FakeApikley, body: object = BODY
) -> str:
    status, answer = await create(session, fake, body)
    assert (status, answer["code"]) == (200, 200), answer
    task_id: str = answer["data"]["taskId"]
    return task_id


def fast_input(**fields: object) -> dict[str, Any]:
    return {"model": MODELS["fast"], "input": {"prompt": "a red fox", **fields}}


# ---------------------------------------------------------------------- createTask


async def test_bad_token_is_an_http_200_envelope_with_code_401(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession
) -> None:
    status, answer = await create(session, fake_apikley, BODY, token="wrong")

    assert status == 200
    assert answer["code"] == 401
    assert answer["msg"].startswith("Unauthorized \N{EN DASH} Authentication failed.")
    assert fake_apikley.create_count == 0


async def test_string_num_images_on_fast_is_accepted(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession
) -> None:
    status, answer = await create(session, fake_apikley, fast_input(num_images="4", seed=7))

    assert (status, answer["code"], answer["msg"]) == (200, 200, "success")
    assert answer["data"]["taskId"].startswith("task_google_")
    assert fake_apikley.create_count == 1


@pytest.mark.parametrize(
    ("body", "named"),
    [
        pytest.param(fast_input(num_images=2), "num_images", id="integer-num-images-on-fast"),
        pytest.param(
            {"model": MODELS["standard"], "input": {"prompt": "a fox", "num_images": "1"}},
            "num_images",
            id="num-images-on-standard",
        ),
        pytest.param(
            {"model": MODELS["ultra"], "input": {"prompt": "a fox", "seed": 7}},
            "seed",
            id="integer-seed-on-ultra",
        ),
        pytest.param(fast_input(output_format="png"), "output_format", id="unknown-input-key"),
        pytest.param(fast_input(seed="7"), "seed", id="string-seed-on-fast"),
        pytest.param(fast_input(aspect_ratio="2:1"), "aspect_ratio", id="bad-aspect-ratio"),
        pytest.param(fast_input(prompt="x" * 5001), "prompt", id="prompt-over-5000"),
        pytest.param({**BODY, "webhook": "http://x"}, "webhook", id="unknown-top-level-key"),
    ],
)
async def test_invalid_create_is_code_422_naming_the_field_and_creates_nothing(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, body: object, named: str
) -> None:
    status, answer = await create(session, fake_apikley, body)

    assert (status, answer["code"], answer["data"]) == (200, 422, None)
    assert named in answer["msg"]
    assert fake_apikley.create_count == 0


async def test_the_21st_create_inside_10_seconds_is_refused_with_code_429(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    for _ in range(20):
        await created_task_id(session, fake_apikley)
        clock.advance(0.4)

    status, answer = await create(session, fake_apikley, BODY)

    assert (status, answer["code"], answer["msg"]) == (200, 429, "Rate limit exceeded")
    assert fake_apikley.create_count == 20


async def test_the_create_limit_window_slides(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    for _ in range(20):
        await created_task_id(session, fake_apikley)
    clock.advance(10.0)

    await created_task_id(session, fake_apikley)

    assert fake_apikley.create_count == 21


async def test_a_dropped_create_answer_still_creates_the_task(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession
) -> None:
    fake_apikley.script_create(ScriptedResponse.disconnect())

    with pytest.raises(aiohttp.ClientError):
        await create(session, fake_apikley, BODY)

    assert fake_apikley.create_count == 1


# ---------------------------------------------------------------------- recordInfo


async def test_a_task_walks_its_states_on_the_clock(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await created_task_id(session, fake_apikley)
    states = []
    for step in (0.01, 0.03, 0.03, 0.1):
        clock.advance(step)
        states.append((await record_info(session, fake_apikley, task_id))["data"]["state"])

    assert states == ["waiting", "queuing", "generating", "success"]


async def test_success_result_json_is_a_string_of_urls_to_real_pngs(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await created_task_id(session, fake_apikley, fast_input(num_images="3"))
    clock.advance(1.0)

    answer = await record_info(session, fake_apikley, task_id)

    data = answer["data"]
    assert (answer["code"], answer["msg"], data["failCode"]) == (200, "success", "")
    assert isinstance(data["resultJson"], str)
    assert json.loads(data["param"]) == fast_input(num_images="3")
    assert data["completeTime"] == data["updateTime"] == round((START + 0.16) * 1000)
    urls = json.loads(data["resultJson"])["resultUrls"]
    assert len(urls) == 3
    for url in urls:
        async with session.get(url) as response:
            picture = PillowImage.open(io.BytesIO(await response.read()))
        assert (picture.format, picture.size) == ("PNG", IMAGEN_PIXELS["16:9"])


async def test_standard_tier_makes_one_square_image_by_default(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    body = {"model": MODELS["standard"], "input": {"prompt": "a fox", "seed": "7"}}
    task_id = await created_task_id(session, fake_apikley, body)
    clock.advance(1.0)

    data = (await record_info(session, fake_apikley, task_id))["data"]

    [url] = json.loads(data["resultJson"])["resultUrls"]
    async with session.get(url) as response:
        picture = PillowImage.open(io.BytesIO(await response.read()))
    assert picture.size == IMAGEN_PIXELS["1:1"]


async def test_result_json_is_empty_before_the_task_ends(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession
) -> None:
    task_id = await created_task_id(session, fake_apikley)

    data = (await record_info(session, fake_apikley, task_id))["data"]

    assert (data["resultJson"], data["completeTime"]) == ("", None)


async def test_unknown_task_id_is_code_422_record_info_is_null(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession
) -> None:
    answer = await record_info(session, fake_apikley, "task_google_nope")

    assert answer == {"code": 422, "msg": "recordInfo is null", "data": None}


async def test_missing_task_id_is_code_400(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession
) -> None:
    answer = await record_info(session, fake_apikley, "")

    assert (answer["code"], answer["msg"]) == (400, "taskId parameter is required")


async def test_fail_next_ends_in_state_fail_with_its_code_and_message(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    fake_apikley.fail_next()
    task_id = await created_task_id(session, fake_apikley)
    clock.advance(1.0)

    data = (await record_info(session, fake_apikley, task_id))["data"]

    assert data["state"] == "fail"
    assert (data["failCode"], data["failMsg"], data["resultJson"]) == (
        "422",
        "Invalid prompt: prompt contains prohibited content",
        "",
    )


async def test_message_key_message_replaces_msg_in_record_info(
    session: aiohttp.ClientSession,
) -> None:
    async with FakeApikley(message_key="message") as fake:
        task_id = await created_task_id(session, fake)
        answer = await record_info(session, fake, task_id)

    assert answer["message"] == "success"
    assert "msg" not in answer


async def test_expired_files_answer_404(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    task_id = await created_task_id(session, fake_apikley)
    clock.advance(1.0)
    fake_apikley.expire_files()

    async with session.get(f"{fake_apikley.origin}/files/{task_id}/0.png") as response:
        assert response.status == 404


# ---------------------------------------------------------------------- callbacks


async def test_success_callback_is_posted_in_the_kie_shape(
    fake_apikley: FakeApikley,
    session: aiohttp.ClientSession,
    clock: ManualClock,
    receiver: Receiver,
) -> None:
    task_id = await created_task_id(session, fake_apikley, {**BODY, "callBackUrl": receiver.url})
    clock.advance(1.0)
    await fake_apikley.wait_for_callbacks(1)

    [(_, body)] = receiver.received
    payload = json.loads(body)
    assert (payload["code"], payload["msg"]) == (200, "Playground task completed successfully.")
    data = payload["data"]
    assert (data["taskId"], data["state"]) == (task_id, "success")
    assert len(json.loads(data["resultJson"])["resultUrls"]) == 1
    assert {"consumeCredits", "remainedCredits", "param", "costTime"} <= set(data)
    assert fake_apikley.callback_deliveries[0].status == 200


async def test_failure_callback_is_code_501_with_fail_fields(
    fake_apikley: FakeApikley,
    session: aiohttp.ClientSession,
    clock: ManualClock,
    receiver: Receiver,
) -> None:
    fake_apikley.fail_next("500", "Internal server error")
    await created_task_id(session, fake_apikley, {**BODY, "callBackUrl": receiver.url})
    clock.advance(1.0)
    await fake_apikley.wait_for_callbacks(1)

    payload = json.loads(receiver.received[0][1])
    assert (payload["code"], payload["msg"]) == (501, "Playground task failed.")
    data = payload["data"]
    assert (data["state"], data["failCode"], data["failMsg"]) == (
        "fail",
        "500",
        "Internal server error",
    )
    assert data["consumeCredits"] == 0


async def test_callback_copies_2_posts_two_identical_callbacks(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async with FakeApikley(callback_copies=2, stage_seconds=0, processing_seconds=0) as fake:
        await created_task_id(session, fake, {**BODY, "callBackUrl": receiver.url})
        await fake.wait_for_callbacks(2)

    first, second = receiver.received
    assert first == second


async def test_no_callback_is_posted_when_send_callbacks_is_false(
    session: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async with FakeApikley(send_callbacks=False, stage_seconds=0, processing_seconds=0) as fake:
        task_id = await created_task_id(session, fake, {**BODY, "callBackUrl": receiver.url})
        assert (await record_info(session, fake, task_id))["data"]["state"] == "success"
        # Absence cannot be awaited: a finished task's callback would be on its way already,
        # so a short grace is enough to see it.
        await asyncio.sleep(0.05)

    assert receiver.received == []
    assert fake.callback_deliveries == []


async def test_signed_callback_carries_kie_hmac_headers(
    session: aiohttp.ClientSession, clock: ManualClock, receiver: Receiver
) -> None:
    key = "test-webhook-hmac-key"
    async with FakeApikley(webhook_hmac_key=key, clock=clock) as fake:
        task_id = await created_task_id(session, fake, {**BODY, "callBackUrl": receiver.url})
        clock.advance(1.0)
        await fake.wait_for_callbacks(1)

    [(headers, _)] = receiver.received
    timestamp = int(headers["X-Webhook-Timestamp"])
    assert timestamp == int(clock.now)
    assert headers["X-Webhook-Signature"] == sign(key, task_id, timestamp)


async def test_unreachable_callback_is_recorded_with_no_status(
    fake_apikley: FakeApikley, session: aiohttp.ClientSession, clock: ManualClock
) -> None:
    # Port 1 on loopback has no listener, so the connection is refused at once.
    await created_task_id(
        session, fake_apikley, {**BODY, "callBackUrl": "http://127.0.0.1:1/callback"}
    )
    clock.advance(1.0)
    await fake_apikley.wait_for_callbacks(1)

    assert fake_apikley.callback_deliveries[0].status is None


def test_signature_reproduces_the_documented_vector() -> None:
    signature = sign("test-webhook-hmac-key", "ee9c2715375b7837f8bb51d641ff5863", 1769670760)

    assert signature == "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4="
