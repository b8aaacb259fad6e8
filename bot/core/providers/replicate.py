"""Replicate and Replicate-compatible proxies (kkiai and others): providers.md §1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from bot.core.config import ReplicateProviderSettings
from bot.core.domain import GenerationRequest, Option, OutputFormat, Tier
from bot.core.errors import (
    CallbackRejected,
    CreatesNotListed,
    GenerationFailed,
    ProviderError,
    ProviderUnavailable,
    ResultUnavailable,
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
from bot.core.providers.http import HttpClient, error_for
from bot.core.providers.image_sources import image_sources
from bot.core.webhooks import signing_key, verify_signature

# Replicate's error strings for Imagen safety blocks carry code E005 (providers.md §1.3).
_SAFETY_MARKERS = ("flagged as sensitive", "(e005)", "safety", "nsfw")
_FAILED_STATUSES = frozenset({"failed", "canceled", "aborted"})
# Statuses of a prediction still on its way (providers.md §1.5); any other may be an end.
_RUNNING_STATUSES = frozenset({"starting", "processing"})
# How far back a restart looks for an interrupted create: 100 predictions a page (§1.1), and
# the provider's clock may run behind the bot's.
MAX_LIST_PAGES = 5
LIST_CLOCK_SKEW_SECONDS = 300.0
# One image per prediction; no seed or negative prompt in the schema (providers.md §1.4).
CAPABILITIES = Capabilities(
    max_images=1,
    max_prompt_length=None,
    options=frozenset({Option.SAFETY}),
    output_formats=frozenset(OutputFormat),
)


class ReplicateProvider:
    """One configured Replicate-format endpoint.

    Proxies echo ``urls.get`` pointing at api.replicate.com where their key does not work, so
    every URL is built from the configured base (providers.md §0.5).
    """

    def __init__(
        self,
        name: str,
        settings: ReplicateProviderSettings,
        *,
        api_key: SecretStr,
        webhook_secret: SecretStr | None,
        http: HttpClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._settings = settings
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._http = http
        self._clock = clock
        self._base = str(settings.base_url).rstrip("/")
        self._key: bytes | None = None
        self._sources = image_sources(settings)
        self.poll_schedule: PollSchedule | None = None

    def capabilities(self, tier: Tier) -> Capabilities:
        return CAPABILITIES

    async def start(self, request: GenerationRequest, *, callback_url: str | None) -> ProviderJob:
        body: dict[str, Any] = {"input": _input(request)}
        if callback_url is not None:
            # Only the terminal event: Replicate retries just that one (providers.md §1.5).
            body["webhook"] = callback_url
            body["webhook_events_filter"] = ["completed"]
        headers = self._auth_headers()
        if self._settings.cancel_after:
            # A prediction that has not started by then is aborted and not billed (§1.2).
            headers["Cancel-After"] = self._settings.cancel_after
        model = self._settings.models[request.tier]
        response = await self._http.request(
            "POST",
            f"{self._base}/models/{model}/predictions",
            headers=headers,
            json_body=body,
            timeout=self._settings.request_timeout_seconds,
        )
        if not response.ok:  # 201 and 202 are both success (providers.md §0.1)
            raise error_for(response)
        return self._parse(response.json())

    async def fetch(self, provider_job_id: str) -> ProviderJob:
        response = await self._http.request(
            "GET",
            f"{self._base}/predictions/{provider_job_id}",
            headers=self._auth_headers(),
            timeout=self._settings.request_timeout_seconds,
        )
        if not response.ok:
            raise error_for(response)
        return self._parse(response.json())

    async def find_created(
        self, request: GenerationRequest, *, callback_url: str | None, sent_after: float
    ) -> list[ProviderJob]:
        """Predictions this endpoint made of ``request`` since ``sent_after``, newest first.

        ``GET /predictions`` lists the account's predictions newest first, 100 a page
        (providers.md §1.1). One carrying a webhook is ours only if it is this job's callback
        URL (its per-job token is unique); one without is matched on model and the exact
        input the bot sends. Raises CreatesNotListed when absence cannot be confirmed: the
        endpoint has no list, the pages run out before ``sent_after``, or a listed item can be
        neither dated nor matched (it may be this very create), since "never arrived" refunds
        an image the provider may have billed.
        """
        model = self._settings.models[request.tier]
        wanted = _input(request)
        since = sent_after - LIST_CLOCK_SKEW_SECONDS
        matches: list[ProviderJob] = []
        # Why some listed item could not be ruled out; only an absence depends on it.
        undecided: str | None = None
        url = f"{self._base}/predictions"
        for _ in range(MAX_LIST_PAGES):
            response = await self._http.request(
                "GET",
                url,
                headers=self._auth_headers(),
                timeout=self._settings.request_timeout_seconds,
            )
            if response.status in (404, 405, 501):
                raise CreatesNotListed(detail=f"GET /predictions answered {response.status}")
            if not response.ok:
                raise error_for(response)
            payload = response.json()
            results = payload.get("results") if isinstance(payload, dict) else None
            if not isinstance(results, list):
                raise ProviderUnavailable(detail="the prediction list is not a list")
            for item in results:
                created = _timestamp(item.get("created_at")) if isinstance(item, dict) else None
                if created is None:
                    undecided = "a listed prediction has no ISO created_at"
                    continue
                if created < since:
                    return _found(matches, undecided)
                made_for = _made_for(item, model=model, wanted=wanted, callback_url=callback_url)
                if made_for is None:
                    undecided = "a listed prediction shows neither webhook nor input"
                elif made_for:
                    matches.append(self._parse(item))
            cursor = _next_page(payload.get("next"))
            if cursor is None:
                return _found(matches, undecided)
            # Proxies echo api.replicate.com links (providers.md §0.5): keep our own base.
            url = f"{self._base}/predictions?{cursor}"
        if matches:
            return matches
        raise CreatesNotListed(detail=f"more than {MAX_LIST_PAGES} pages since the create")

    async def cancel(self, provider_job_id: str) -> None:
        response = await self._http.request(
            "POST",
            f"{self._base}/predictions/{provider_job_id}/cancel",
            headers=self._auth_headers(),
            timeout=self._settings.request_timeout_seconds,
        )
        if not response.ok:
            raise error_for(response)

    async def download(self, job: ProviderJob) -> list[Image]:
        return await self._http.download_images(
            job.output_urls,
            sources=self._sources,
            timeout=self._settings.request_timeout_seconds,
            headers_for=self._file_headers,
        )

    async def authenticate_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackProof:
        delivery_id = None
        if self._settings.verifies_signatures:
            delivery_id = verify_signature(
                await self._signing_key(), headers, body, now=self._clock()
            )
        # Proxies do not sign; the per-job URL token and a confirming GET stand in (§1.6).
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # deep nesting exhausts the parser's stack
            raise CallbackRejected(400, "body is not JSON") from None
        if not isinstance(payload, dict):
            raise CallbackRejected(400, "body is not a JSON object")
        prediction_id = payload.get("id")
        return CallbackProof(
            prediction_id if isinstance(prediction_id, str) else None,
            delivery_id=delivery_id,
            may_have_ended=payload.get("status") not in _RUNNING_STATUSES,
        )

    async def check_key(self) -> str:
        """GET of a prediction that cannot exist: 401 for a bad key, 404 for a good one."""
        response = await self._http.request(
            "GET",
            f"{self._base}/predictions/imagine-bot-key-check",
            headers=self._auth_headers(),
            timeout=self._settings.request_timeout_seconds,
        )
        if response.status != 404 and not response.ok:
            raise error_for(response)
        return "key accepted"

    async def _signing_key(self) -> bytes:
        if self._key is None:
            secret = self._webhook_secret
            if secret is None:
                secret = await self._fetch_default_secret()
            self._key = signing_key(secret.get_secret_value())
        return self._key

    async def _fetch_default_secret(self) -> SecretStr:
        """Ask Replicate for the account's signing secret (``GET /webhooks/default/secret``)."""
        try:
            response = await self._http.request(
                "GET",
                f"{self._base}/webhooks/default/secret",
                headers=self._auth_headers(),
                timeout=self._settings.request_timeout_seconds,
            )
        except ProviderError as exc:
            raise CallbackRejected(503, "webhook secret not available yet") from exc
        payload = response.json()
        key = payload.get("key") if isinstance(payload, dict) else None
        if not response.ok or not isinstance(key, str):
            # 503 makes Replicate retry later, when the secret may be reachable again.
            raise CallbackRejected(503, "webhook secret not available yet")
        return SecretStr(key)

    def _file_headers(self, url: str) -> dict[str, str] | None:
        host = urlsplit(url).hostname or ""
        # Replicate's file host wants the token (providers.md §1.3); no other host gets it.
        is_replicate_host = host == "replicate.delivery" or host.endswith(".replicate.delivery")
        return self._auth_headers() if is_replicate_host else None

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    def _parse(self, payload: object) -> ProviderJob:
        if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
            raise ProviderUnavailable(detail="the answer is not a prediction object")
        prediction_id: str = payload["id"]
        status = payload.get("status")
        if status == "succeeded":
            urls = _output_urls(payload.get("output"))
            if payload.get("data_removed") or not urls:
                return ProviderJob(
                    prediction_id,
                    ProviderStatus.FAILED,
                    failure=ResultUnavailable(detail="prediction output was removed"),
                )
            return ProviderJob(prediction_id, ProviderStatus.SUCCEEDED, output_urls=urls)
        if status in _FAILED_STATUSES:
            return ProviderJob(
                prediction_id, ProviderStatus.FAILED, failure=_failure(status, payload)
            )
        # starting, processing, or a status newer than this code: the deadline bounds the wait.
        return ProviderJob(prediction_id, ProviderStatus.PENDING)


def _input(request: GenerationRequest) -> dict[str, str]:
    return {
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio.value,
        "output_format": request.output_format.value,
        "safety_filter_level": request.safety.value,
    }


def _found(matches: list[ProviderJob], undecided: str | None) -> list[ProviderJob]:
    """The matches, or a CreatesNotListed when there are none and an item was undecided."""
    if not matches and undecided is not None:
        raise CreatesNotListed(detail=undecided)
    return matches


def _made_for(
    item: Mapping[str, Any], *, model: str, wanted: Mapping[str, str], callback_url: str | None
) -> bool | None:
    """Whether a listed prediction is the create this job sent; None when the item shows
    nothing to tell by (no webhook, and no input or an emptied one)."""
    if item.get("model", model) != model or item.get("source", "api") != "api":
        return False
    webhook = item.get("webhook")
    if isinstance(webhook, str) and webhook:
        return webhook == callback_url
    given = item.get("input")
    if not isinstance(given, dict) or not given:
        return None
    return all(given.get(k) == v for k, v in wanted.items())


def _timestamp(value: object) -> float | None:
    """Replicate's ISO-8601 times carry 3 to 9 fractional digits and a Z (providers.md §1.3)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _next_page(link: object) -> str | None:
    """The query of the list's ``next`` link (its cursor), or None on the last page."""
    if not isinstance(link, str) or not link:
        return None
    return urlsplit(link).query or None


def _output_urls(output: object) -> tuple[str, ...]:
    """Imagen outputs one URI string; lists and data: URIs are accepted too (§0.3)."""
    if isinstance(output, str) and output:
        return (output,)
    if isinstance(output, list):
        return tuple(item for item in output if isinstance(item, str) and item)
    return ()


def _failure(status: object, payload: Mapping[str, Any]) -> GenerationFailed:
    if status == "aborted":
        return GenerationFailed(
            "The image service could not start the job before its deadline. Please try again.",
            detail="prediction aborted",
        )
    if status == "canceled":
        return GenerationFailed(
            "The job was canceled at the image service.", detail="prediction canceled"
        )
    error = payload.get("error")
    text = error if isinstance(error, str) else ""
    if any(marker in text.lower() for marker in _SAFETY_MARKERS):
        return SafetyBlocked(detail=text)
    return GenerationFailed(detail=text or "prediction failed")
