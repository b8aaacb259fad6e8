"""Every way a callback can be refused leaves the database exactly as it was."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aiosqlite
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import AnyHttpUrl, SecretStr

from bot.core.config import ApikleyProviderSettings, ReplicateProviderSettings, Settings
from bot.core.delivery import Posted
from bot.core.domain import Job
from bot.core.images import ImageStore
from bot.core.listener import create_listener_app
from bot.core.providers.apikley import ApikleyProvider
from bot.core.providers.base import ImageProvider
from bot.core.providers.http import HttpClient
from bot.core.providers.replicate import ReplicateProvider
from bot.core.storage.jobs import JobRepository
from bot.core.webhooks import sign, signing_key
from tests.conftest import move_to_submitted, stored_job, table_snapshot
from tests.factories import a_request, a_target
from tests.services import job_service

SECRET = "whsec_" + base64.b64encode(b"listener-test-key-24byte").decode()
PREDICTION_ID = "p5jXN8AQM9LWM0D4"
MAX_BODY = 4096


class NeverPublishes:
    async def post_in_channel(self, *_: object) -> Posted:
        raise AssertionError("callbacks must not publish")

    async def show_privately(self, *_: object, by_setting: bool = False) -> None:
        raise AssertionError("callbacks must not publish")

    async def send_direct(self, *_: object) -> None:
        raise AssertionError("callbacks must not publish")

    async def show_outcome(self, *_: object) -> None:
        raise AssertionError("callbacks must not publish")

    async def report_to_mod_log(self, *_: object) -> None:
        raise AssertionError("nothing is reported here")

    async def publish_progress(self, *_: object) -> None:
        raise AssertionError("callbacks must not publish")


@pytest.fixture
async def client(
    connection: aiosqlite.Connection, tmp_path: Path
) -> AsyncIterator[TestClient[Any, Any]]:
    async with aiohttp.ClientSession() as session:
        http = HttpClient(session)
        providers: dict[str, ImageProvider] = {
            "replicate": ReplicateProvider(
                "replicate",
                ReplicateProviderSettings(
                    base_url=AnyHttpUrl("http://127.0.0.1:9/v1"), webhook_mode="signed"
                ),
                api_key=SecretStr("r8_test"),
                webhook_secret=SecretStr(SECRET),
                http=http,
            ),
            "proxy": ReplicateProvider(
                "proxy",
                ReplicateProviderSettings(base_url=AnyHttpUrl("http://127.0.0.1:9/replicate/v1")),
                api_key=SecretStr("proxy-key"),
                webhook_secret=None,
                http=http,
            ),
            "apikley": ApikleyProvider(
                "apikley",
                ApikleyProviderSettings(type="apikley", base_url=AnyHttpUrl("http://127.0.0.1:9")),
                api_key=SecretStr("apikley-key"),
                webhook_key=None,
                http=http,
            ),
            "apikley-signed": ApikleyProvider(
                "apikley-signed",
                ApikleyProviderSettings(type="apikley", base_url=AnyHttpUrl("http://127.0.0.1:9")),
                api_key=SecretStr("apikley-key"),
                webhook_key=SecretStr("kie-webhook-key"),
                http=http,
            ),
        }
        jobs = job_service(
            connection,
            providers=providers,
            publisher=NeverPublishes(),
            images=ImageStore(tmp_path / "images"),
            settings=Settings(),
            public_url="https://bot.example.com",
        )
        app = create_listener_app(jobs, max_body_bytes=MAX_BODY)
        async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
            yield test_client


async def submitted_job(repository: JobRepository, provider: str = "replicate") -> Job:
    job = await stored_job(
        repository, a_request(), a_target(), callback_token="tok-" + provider, now=1
    )
    await move_to_submitted(repository, job.id, provider=provider, prediction=PREDICTION_ID)
    return job


def prediction_body(prediction_id: str = PREDICTION_ID) -> bytes:
    return json.dumps({"id": prediction_id, "status": "succeeded", "output": "x"}).encode()


def signed_headers(
    body: bytes, *, webhook_id: str = "msg_1", timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = sign(signing_key(SECRET), webhook_id, timestamp, body)
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


async def post(
    client: TestClient[Any, Any],
    job: Job,
    body: bytes,
    headers: dict[str, str],
    *,
    provider: str = "replicate",
    token: str | None = None,
) -> aiohttp.ClientResponse:
    params = {"job": str(job.id), "token": job.callback_token if token is None else token}
    return await client.post(f"/callbacks/{provider}", data=body, headers=headers, params=params)


async def test_healthz_answers_ok(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_genuine_callback_is_accepted_and_remembered(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = prediction_body()
    response = await post(client, job, body, signed_headers(body))
    assert response.status == 200
    assert await response.json() == {"status": "accepted"}
    assert (await table_snapshot(connection))["webhook_deliveries"][0][:3] == (
        "msg_1",
        "replicate",
        job.id,
    )


async def test_replayed_delivery_changes_nothing(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = prediction_body()
    await post(client, job, body, signed_headers(body))
    before = await table_snapshot(connection)
    response = await post(client, job, body, signed_headers(body))
    assert response.status == 200
    assert await response.json() == {"status": "duplicate"}
    assert await table_snapshot(connection) == before


async def rejected(
    client: TestClient[Any, Any],
    connection: aiosqlite.Connection,
    job: Job,
    body: bytes,
    headers: dict[str, str],
    **kwargs: Any,
) -> int:
    """Post a callback and return its status, asserting the database did not change."""
    before = await table_snapshot(connection)
    response = await post(client, job, body, headers, **kwargs)
    assert await table_snapshot(connection) == before
    return response.status


async def test_bad_signature_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    headers = signed_headers(prediction_body())
    forged = prediction_body().replace(b"succeeded", b"failed")
    assert await rejected(client, connection, job, forged, headers) == 401


async def test_stale_timestamp_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = prediction_body()
    stale = signed_headers(body, timestamp=int(time.time()) - 600)
    assert await rejected(client, connection, job, body, stale) == 401


async def test_oversized_body_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = json.dumps({"id": PREDICTION_ID, "logs": "x" * MAX_BODY}).encode()
    assert await rejected(client, connection, job, body, signed_headers(body)) == 413


async def test_body_that_is_not_json_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = b"{not json"
    assert await rejected(client, connection, job, body, signed_headers(body)) == 400


async def test_unknown_job_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = prediction_body()
    ghost = dataclasses.replace(job, id=job.id + 100)
    assert await rejected(client, connection, ghost, body, signed_headers(body)) == 404


async def test_missing_signature_headers_are_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    headers = {"Content-Type": "application/json"}
    assert await rejected(client, connection, job, prediction_body(), headers) == 400


async def test_wrong_content_type_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = prediction_body()
    headers = {**signed_headers(body), "Content-Type": "text/plain"}
    assert await rejected(client, connection, job, body, headers) == 415


async def test_callback_about_another_prediction_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    body = prediction_body("someone-elses-prediction")
    assert await rejected(client, connection, job, body, signed_headers(body)) == 400


async def test_callback_for_a_finished_job_changes_nothing(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository)
    await repository.mark_failed(job.id, error="x", now=3)
    await repository.mark_delivered(job.id, now=4)
    body = prediction_body()
    before = await table_snapshot(connection)
    response = await post(client, job, body, signed_headers(body))
    assert await response.json() == {"status": "late"}
    assert await table_snapshot(connection) == before


async def test_get_on_the_callback_route_is_refused(client: TestClient[Any, Any]) -> None:
    response = await client.get("/callbacks/replicate")
    assert response.status == 405


async def test_proxy_callback_needs_only_the_url_token(
    client: TestClient[Any, Any], repository: JobRepository
) -> None:
    job = await submitted_job(repository, provider="proxy")
    response = await post(
        client, job, prediction_body(), {"Content-Type": "application/json"}, provider="proxy"
    )
    assert response.status == 200
    assert await response.json() == {"status": "accepted"}


async def test_proxy_callback_with_a_wrong_token_is_rejected(
    client: TestClient[Any, Any], repository: JobRepository, connection: aiosqlite.Connection
) -> None:
    job = await submitted_job(repository, provider="proxy")
    headers = {"Content-Type": "application/json"}
    status = await rejected(
        client, connection, job, prediction_body(), headers, provider="proxy", token="guess"
    )
    assert status == 404


HOSTILE_QUERIES = [
    {"job": "\u00b2", "token": "t"},  # a Unicode digit that str.isdigit() accepts
    {"job": "9" * 30, "token": "t"},  # past SQLite's 2^63 - 1
    {"job": str(2**63), "token": "t"},
    {"job": "0", "token": "t"},
    {"job": "-1", "token": "t"},
    {"job": "1e3", "token": "t"},
    {"job": "1", "token": "t\u00e9"},
    {"job": "1"},
    {},
]


@pytest.mark.parametrize("provider", ["replicate", "proxy", "apikley", "unknown"])
@pytest.mark.parametrize("query", HOSTILE_QUERIES)
async def test_malformed_callback_urls_get_a_4xx_and_change_nothing(
    client: TestClient[Any, Any],
    connection: aiosqlite.Connection,
    provider: str,
    query: dict[str, str],
) -> None:
    await submitted_job(JobRepository(connection))
    before = await table_snapshot(connection)

    response = await client.post(
        f"/callbacks/{provider}",
        data=b'{"taskId": "t1", "id": "p1"}',
        headers={"Content-Type": "application/json"},
        params=query,
    )

    assert 400 <= response.status < 500
    assert await table_snapshot(connection) == before


@pytest.mark.parametrize("timestamp", ["9" * 400, "\u00b2\u00b3", "-5", "12.5"])
async def test_a_signature_timestamp_that_is_no_unix_time_gets_a_400(
    client: TestClient[Any, Any], connection: aiosqlite.Connection, timestamp: str
) -> None:
    job = await submitted_job(JobRepository(connection))
    body = prediction_body()
    headers = {**signed_headers(body), "webhook-timestamp": timestamp}

    response = await post(client, job, body, headers)

    assert response.status == 400


async def test_a_newline_in_the_callback_path_cannot_forge_a_log_line(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    response = await client.post(
        "/callbacks/x%0A2026-12-02 CRITICAL bot: forged",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        params={"job": "1", "token": "t"},
    )

    assert response.status == 404
    assert caplog.records
    assert all("\n" not in record.getMessage() for record in caplog.records)


async def raw_post(
    client: TestClient[Any, Any], target: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes]:
    """POST with header bytes sent as they are: aiohttp's client would refuse to encode
    what a hostile peer can send (bytes that are not UTF-8)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    head = [f"POST {target} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    head += [name + b": " + value for name, value in headers]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


NOW = str(int(time.time())).encode()
LONE_SURROGATE_TASK = b'{"taskId": "\\ud800", "code": 200}'
HOSTILE_VALUES = {
    "apikley task id that is a lone surrogate, signed": (
        "apikley-signed",
        LONE_SURROGATE_TASK,
        [(b"X-Webhook-Timestamp", NOW), (b"X-Webhook-Signature", b"c2lnbmF0dXJl")],
    ),
    "apikley task id that is a lone surrogate, unsigned": ("apikley", LONE_SURROGATE_TASK, []),
    "apikley signature that is not UTF-8": (
        "apikley-signed",
        b'{"taskId": "t1"}',
        [(b"X-Webhook-Timestamp", NOW), (b"X-Webhook-Signature", b"\xff\xfe")],
    ),
    "replicate webhook id that is not UTF-8": (
        "replicate",
        prediction_body(),
        [
            (b"webhook-id", b"\xff\xfe"),
            (b"webhook-timestamp", NOW),
            (b"webhook-signature", b"v1,x"),
        ],
    ),
    "replicate webhook id that is UTF-8 but not ASCII": (
        "replicate",
        prediction_body(),
        [
            (b"webhook-id", "msg_\u00e9".encode()),
            (b"webhook-timestamp", NOW),
            (b"webhook-signature", b"v1,x"),
        ],
    ),
    "replicate signature that is not UTF-8": (
        "replicate",
        prediction_body(),
        [
            (b"webhook-id", b"msg_1"),
            (b"webhook-timestamp", NOW),
            (b"webhook-signature", b"v1,\xff"),
        ],
    ),
    "replicate timestamp that is not UTF-8": (
        "replicate",
        prediction_body(),
        [
            (b"webhook-id", b"msg_1"),
            (b"webhook-timestamp", b"\xff"),
            (b"webhook-signature", b"v1,x"),
        ],
    ),
}


@pytest.mark.parametrize(
    ("provider", "body", "headers"), HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys()
)
async def test_non_ascii_ids_signatures_and_timestamps_get_a_400_and_change_nothing(
    client: TestClient[Any, Any],
    connection: aiosqlite.Connection,
    provider: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    job = await submitted_job(JobRepository(connection), provider=provider)
    before = await table_snapshot(connection)

    status, answer = await raw_post(
        client, f"/callbacks/{provider}?job={job.id}&token={job.callback_token}", headers, body
    )

    assert status == 400
    assert b"Traceback" not in answer
    assert await table_snapshot(connection) == before


class FailingHandler:
    """A job service that fails in a way nobody foresaw, to reach the last-resort answer."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def handle_callback(self, *_: object, **__: object) -> str:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuntimeError("boom\n2026-12-02 CRITICAL bot: forged"), 500),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), 400),
    ],
)
async def test_an_unforeseen_failure_gets_a_json_answer_and_one_escaped_log_line(
    caplog: pytest.LogCaptureFixture, error: Exception, status: int
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_listener_app(FailingHandler(error), max_body_bytes=MAX_BODY)
    async with TestClient(TestServer(app, host="127.0.0.1")) as failing:
        response = await failing.post(
            "/callbacks/replicate",
            data=b"{}",
            headers={"Content-Type": "application/json"},
            params={"job": "1", "token": "t"},
        )
        text = await response.text()

    assert response.status == status
    assert response.content_type == "application/json"
    assert "Traceback" not in text
    assert "boom" not in text
    [record] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.name == "bot.core.listener"
    assert record.exc_info is None
    assert "\n" not in record.getMessage()
    assert "test_listener.py" in record.getMessage()


async def test_the_last_resort_leaves_the_routers_own_answers_alone(
    client: TestClient[Any, Any],
) -> None:
    assert (await client.get("/nowhere")).status == web.HTTPNotFound.status_code
    assert (await client.put("/callbacks/replicate")).status == web.HTTPMethodNotAllowed.status_code
