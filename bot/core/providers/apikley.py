"""Apikley, a KIE.ai market API clone: create a task, get a callback, confirm by polling
(providers.md §3)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from bot.core.config import ApikleyProviderSettings
from bot.core.domain import MAX_IMAGES, GenerationRequest, Option, OutputFormat, Tier
from bot.core.errors import (
    CallbackRejected,
    CreatesNotListed,
    GenerationFailed,
    ProviderAuthError,
    ProviderError,
    ProviderMisconfigured,
    ProviderOutOfCredits,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
    SafetyBlocked,
)
from bot.core.images import Image
from bot.core.providers.base import (
    CallbackProof,
    Capabilities,
    PollSchedule,
    ProviderJob,
    ProviderStatus,
)
from bot.core.providers.http import HttpClient, HttpResponse, error_for
from bot.core.providers.image_sources import image_sources
from bot.core.webhooks import verify_task_signature

# Prompts and negative prompts up to 5000 characters; no safety level or output format, and
# results are PNG; only imagen4-fast takes num_images (providers.md §3.1).
MAX_PROMPT_LENGTH = 5000
_BASE_OPTIONS = frozenset({Option.NEGATIVE_PROMPT, Option.SEED})
_CAPABILITIES = {
    tier: Capabilities(
        max_images=MAX_IMAGES if tier is Tier.FAST else 1,
        max_prompt_length=MAX_PROMPT_LENGTH,
        options=_BASE_OPTIONS,
        output_formats=frozenset({OutputFormat.PNG}),
    )
    for tier in Tier
}
# Moderation refusals arrive as state "fail" with text like this (providers.md §3.3).
_SAFETY_MARKERS = ("prohibited", "sensitive", "safety", "nsfw", "moderation", "policy")


class UnknownOrInvalid(ProviderRejected):
    """Envelope code 422: a validation error on createTask, an unknown task on recordInfo."""


class ApikleyProvider:
    """Errors arrive as HTTP 200 with the real status in the envelope's ``code`` (§0.7)."""

    def __init__(
        self,
        name: str,
        settings: ApikleyProviderSettings,
        *,
        api_key: SecretStr,
        webhook_key: SecretStr | None,
        http: HttpClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._settings = settings
        self._api_key = api_key
        self._webhook_key = webhook_key
        self._http = http
        self._clock = clock
        self._base = str(settings.base_url).rstrip("/") + "/api/v1/jobs"
        self._sources = image_sources(settings)
        first, then, after = settings.poll_intervals_seconds
        # Every 2-3 s for the first 30 s, 5-10 s until 2 min, then 15-30 s (providers.md §3.3).
        self.poll_schedule: PollSchedule | None = PollSchedule(
            ((30.0, first), (120.0, then)), after
        )

    def capabilities(self, tier: Tier) -> Capabilities:
        return _CAPABILITIES[tier]

    async def start(self, request: GenerationRequest, *, callback_url: str | None) -> ProviderJob:
        # Documented defaults are not always applied server-side: send every field (§3.1).
        model_input: dict[str, Any] = {
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt or "",
            "aspect_ratio": request.aspect_ratio.value,
        }
        if request.tier is Tier.FAST:
            # imagen4-fast: num_images is a string enum, seed an integer.
            model_input["num_images"] = str(request.image_count)
            if request.seed is not None:
                model_input["seed"] = request.seed
        else:
            # imagen4 and imagen4-ultra: no num_images; seed is a string (§0.8).
            model_input["seed"] = "" if request.seed is None else str(request.seed)
        body: dict[str, Any] = {"model": self._settings.models[request.tier], "input": model_input}
        if callback_url is not None:
            body["callBackUrl"] = callback_url
        data = await self._call("POST", f"{self._base}/createTask", json_body=body)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ProviderUnavailable(detail="createTask answered without a taskId")
        return ProviderJob(task_id, ProviderStatus.PENDING)

    async def fetch(self, provider_job_id: str) -> ProviderJob:
        try:
            query = urlencode({"taskId": provider_job_id})
            data = await self._call("GET", f"{self._base}/recordInfo?{query}")
        except UnknownOrInvalid as exc:
            # "recordInfo is null": the task is unknown, so it will never finish (§0.7).
            return ProviderJob(
                provider_job_id,
                ProviderStatus.FAILED,
                failure=GenerationFailed(detail=f"task unknown to Apikley: {exc.detail}"),
            )
        if not isinstance(data, dict):
            raise ProviderUnavailable(detail="recordInfo answered without data")
        return _record(provider_job_id, data)

    async def find_created(
        self, request: GenerationRequest, *, callback_url: str | None, sent_after: float
    ) -> list[ProviderJob]:
        """The market API has recordInfo by task id only, and no list of tasks (§3.3)."""
        raise CreatesNotListed(detail="Apikley lists no jobs")

    async def cancel(self, provider_job_id: str) -> None:
        """The market API has no cancel endpoint; an unwanted task simply runs out."""

    async def download(self, job: ProviderJob) -> list[Image]:
        return await self._http.download_images(
            job.output_urls, sources=self._sources, timeout=self._settings.request_timeout_seconds
        )

    async def authenticate_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackProof:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # deep nesting exhausts the parser's stack
            raise CallbackRejected(400, "body is not JSON") from None
        task_id = _callback_task_id(payload)
        if task_id is None:
            raise CallbackRejected(400, "callback names no task")
        if not task_id.isascii():
            # Apikley's task ids are hex; a JSON "\ud800" escape would decode to a lone
            # surrogate that nothing downstream can encode.
            raise CallbackRejected(400, "callback task id is not ASCII")
        if self._webhook_key is not None:
            # KIE signs only taskId and timestamp, not the body (§0.9): the job still re-reads
            # recordInfo before believing anything.
            verify_task_signature(
                self._webhook_key.get_secret_value(), task_id, headers, now=self._clock()
            )
        return CallbackProof(task_id)

    async def check_key(self) -> str:
        """recordInfo of a task that cannot exist: 401 for a bad key, 422 for a good one."""
        with contextlib.suppress(UnknownOrInvalid):  # "recordInfo is null": the key works
            await self._call("GET", f"{self._base}/recordInfo?taskId=imagine-bot-key-check")
        return "key accepted"

    async def _call(self, method: str, url: str, *, json_body: Any = None) -> Any:
        """Send one request and return the envelope's ``data``, or raise what ``code`` says."""
        response = await self._http.request(
            method,
            url,
            headers={"Authorization": f"Bearer {self._api_key.get_secret_value()}"},
            json_body=json_body,
            timeout=self._settings.request_timeout_seconds,
        )
        payload = response.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("code"), int):
            # The API answers every call with its envelope; anything else is a gateway's page
            # in front of it, whatever its status, so it says nothing about the job itself.
            if response.status == 429:
                raise error_for(response)
            raise ProviderUnavailable(detail=response.detail())
        if payload["code"] != 200:
            raise _envelope_error(payload["code"], response)
        return payload.get("data")


def _envelope_error(code: int, response: HttpResponse) -> ProviderError:
    """The market API's codes (providers.md §3.2)."""
    detail = f"code {code}: {response.detail()}"
    if code == 401:
        return ProviderAuthError(detail=detail)
    if code == 402:
        return ProviderOutOfCredits(detail=detail)
    if code == 429:
        # "Request was not queued" (§3.5): nothing exists, so sending again is safe.
        return ProviderRateLimited(response.retry_after(), detail=detail)
    if code == 455:
        # Maintenance: the task was refused, so nothing was created either.
        return ProviderUnavailable(detail=detail, request_was_sent=False)
    if code == 422:
        return UnknownOrInvalid(detail=detail)
    if code in (404, 505):
        return ProviderMisconfigured(detail=detail)
    if code == 400:
        return ProviderRejected(detail=detail)
    if code == 501:
        return GenerationFailed(detail=detail)
    # 500 may be a validation error in disguise or a real fault (§3.1): never resend blindly.
    return ProviderUnavailable(detail=detail)


def _record(task_id: str, data: Mapping[str, Any]) -> ProviderJob:
    state = data.get("state")
    if state == "success":
        urls = _result_urls(data.get("resultJson"))
        if not urls:
            return ProviderJob(
                task_id,
                ProviderStatus.FAILED,
                failure=GenerationFailed(detail="success without resultUrls"),
            )
        return ProviderJob(task_id, ProviderStatus.SUCCEEDED, output_urls=urls)
    if state == "fail":
        # failMsg may be null (reported live, providers.md §3.3).
        message = str(data.get("failMsg") or "")
        text = f"failCode {data.get('failCode')}: {message}"
        failure = (
            SafetyBlocked(detail=text)
            if any(marker in message.lower() for marker in _SAFETY_MARKERS)
            else GenerationFailed(detail=text)
        )
        return ProviderJob(task_id, ProviderStatus.FAILED, failure=failure)
    # waiting, queuing, generating, or a state newer than this code: the deadline bounds it.
    return ProviderJob(task_id, ProviderStatus.PENDING)


def _result_urls(result_json: object) -> tuple[str, ...]:
    """``resultJson`` is a JSON string holding ``{"resultUrls": [...]}`` (§3.3)."""
    if not isinstance(result_json, str) or not result_json:
        return ()
    try:
        result = json.loads(result_json)
    except ValueError:
        return ()
    urls = result.get("resultUrls") if isinstance(result, dict) else None
    if not isinstance(urls, list):
        return ()
    return tuple(url for url in urls if isinstance(url, str) and url)


def _callback_task_id(payload: object) -> str | None:
    """``taskId``, else ``data.taskId``, else ``data.task_id`` (providers.md §3.4)."""
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    for value in (payload.get("taskId"), data.get("taskId"), data.get("task_id")):
        if isinstance(value, str) and value:
            return value
    return None
