"""AIML API: one synchronous call per generation (providers.md §2)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from bot.core.config import AimlProviderSettings
from bot.core.domain import MAX_IMAGES, GenerationRequest, Option, OutputFormat, Tier
from bot.core.errors import (
    CallbackRejected,
    CreatesNotListed,
    ProviderOutOfCredits,
    ProviderRejected,
    ProviderTimeout,
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
from bot.core.providers.http import HttpClient, HttpResponse, error_for
from bot.core.providers.image_sources import image_sources

# The schema caps the prompt at 400 characters on all three tiers and has no negative prompt
# or output format; images come back as PNG (providers.md §2.2).
MAX_PROMPT_LENGTH = 400
# A validation error answers at once; this only bounds an unreachable host.
CHECK_TIMEOUT_SECONDS = 30.0
CAPABILITIES = Capabilities(
    max_images=MAX_IMAGES,
    max_prompt_length=MAX_PROMPT_LENGTH,
    options=frozenset({Option.SEED, Option.SAFETY}),
    output_formats=frozenset({OutputFormat.PNG}),
)


class AimlProvider:
    """The answer to the create is the result, so there is nothing to poll or cancel.

    A 504 "Generation timeout" or a client timeout may still have been billed (§2.4): the
    job service never sends such a create to AIML again.
    """

    def __init__(
        self,
        name: str,
        settings: AimlProviderSettings,
        *,
        api_key: SecretStr,
        http: HttpClient,
    ) -> None:
        self.name = name
        self._settings = settings
        self._api_key = api_key
        self._http = http
        self._url = str(settings.base_url).rstrip("/") + "/images/generations"
        self._sources = image_sources(settings)
        self.poll_schedule: PollSchedule | None = None

    def capabilities(self, tier: Tier) -> Capabilities:
        return CAPABILITIES

    async def start(self, request: GenerationRequest, *, callback_url: str | None) -> ProviderJob:
        body: dict[str, Any] = {
            "model": self._settings.models[request.tier],
            "prompt": request.prompt,
            "num_images": request.image_count,
            "aspect_ratio": request.aspect_ratio.value,
            # AIML calls it safety_setting and defaults to medium; send it always (§2.2).
            "safety_setting": request.safety.value,
            "enhance_prompt": self._settings.enhance_prompt,
            "person_generation": self._settings.person_generation,
            "convert_base64_to_url": True,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        response = await self._http.request(
            "POST",
            self._url,
            headers=self._auth_headers(),
            json_body=body,
            timeout=self._settings.request_timeout_seconds,
        )
        if not response.ok:  # 200 now, 201 in the 2025 spec (providers.md §2.3)
            raise _error(response)
        return _parse(response.json())

    async def fetch(self, provider_job_id: str) -> ProviderJob:
        # Only reached when a restart fell between the answer and the download: the answer
        # is gone and AIML has no endpoint that gives it back.
        return ProviderJob(
            provider_job_id,
            ProviderStatus.FAILED,
            failure=ResultUnavailable(detail="AIML results cannot be fetched again"),
        )

    async def find_created(
        self, request: GenerationRequest, *, callback_url: str | None, sent_after: float
    ) -> list[ProviderJob]:
        """AIML keeps no record of a generation that could be listed or fetched (§2)."""
        raise CreatesNotListed(detail="AIML lists no jobs")

    async def cancel(self, provider_job_id: str) -> None:
        """Nothing runs at AIML after its answer; there is nothing to cancel."""

    async def download(self, job: ProviderJob) -> list[Image]:
        return await self._http.download_images(
            job.output_urls, sources=self._sources, timeout=self._settings.request_timeout_seconds
        )

    async def authenticate_callback(self, headers: Mapping[str, str], body: bytes) -> CallbackProof:
        raise CallbackRejected(404, "AIML sends no callbacks")

    async def check_key(self) -> str:
        """A create without a prompt: 401 for a bad key, a free 400 validation error else."""
        response = await self._http.request(
            "POST",
            self._url,
            headers=self._auth_headers(),
            json_body={"model": self._settings.models[Tier.FAST]},
            timeout=CHECK_TIMEOUT_SECONDS,
        )
        if response.status != 400:
            raise _error(response)
        return "key accepted"

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}


def _error(response: HttpResponse) -> Exception:
    """AIML's statuses (providers.md §2.4): 403 is out of credits, 504 may be billed."""
    detail = response.detail()
    if response.status == 403:
        return ProviderOutOfCredits(detail=detail)
    if response.status == 400:
        return ProviderRejected(
            "The image service refused these settings: " + detail[:200], detail=detail
        )
    if response.status == 504:
        return ProviderTimeout(detail=detail)
    if response.ok:
        return ProviderUnavailable(detail=f"unexpected HTTP {response.status}")
    return error_for(response)


def _parse(payload: object) -> ProviderJob:
    if not isinstance(payload, dict):
        raise ProviderUnavailable(detail="the answer is not a JSON object")
    data = payload.get("data")
    urls: list[str] = []
    prompts: list[str] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("url"), str) and item["url"]:
            urls.append(item["url"])
        elif isinstance(item.get("b64_json"), str) and item["b64_json"]:
            mime = item.get("mime_type") if isinstance(item.get("mime_type"), str) else "image/png"
            urls.append(f"data:{mime};base64,{item['b64_json']}")
        if isinstance(item.get("prompt"), str):
            prompts.append(item["prompt"])
    # Our own id: AIML's answer carries none, and the job row needs one.
    job_id = "aiml-" + secrets.token_hex(8)
    if not urls:
        # A blocked generation's shape is undocumented; empty data is the observed one (§2.3).
        return ProviderJob(
            job_id, ProviderStatus.FAILED, failure=SafetyBlocked(detail="AIML returned no image")
        )
    return ProviderJob(
        job_id,
        ProviderStatus.SUCCEEDED,
        output_urls=tuple(urls),
        prompt_used=prompts[0] if prompts else None,
    )
