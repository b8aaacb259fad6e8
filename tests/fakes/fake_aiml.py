"""A fake AIML API on 127.0.0.1, speaking providers.md §2 and §6.

It is a real HTTP server, so the bot's own client runs unmodified against it:

- ``POST {base}/images/generations`` needs ``Authorization: Bearer <token>`` and answers 401 with
  AIML's verbatim message otherwise (§2.4).
- The body is validated like the published schema (§2.2): the three ``google/imagen-4.0-…-001``
  ids, a prompt of 1…400 characters (counted in UTF-16 units, as a JavaScript validator counts),
  ``num_images`` 1…4, ``seed`` 0…4294967295, the enums, real booleans and no unknown keys. A
  violation answers 400 ``"Body validation error! <field>: <hint>"`` with zod-style
  Expected/received hints (§2.4) and is not billed.
- A valid request is synchronous: it is billed on arrival (recorded in ``generations``), and after
  ``latency`` seconds answers ``success_status`` (200 now, 201 in the Sept 2025 spec, §2.3) with
  ``data[]`` and ``meta.usage.credits_used`` (or ``tokens_used``, the older name).
- ``enhance_prompt`` defaults to true, so the prompt echoed in ``data[].prompt`` is a rewritten one.
- Images are real PNGs at Imagen's pixel size for the aspect ratio, served without auth like a CDN
  at ``/files/{generation_id}/{index}.png``, or inlined as ``b64_json`` (with ``url: null``) when
  ``convert_base64_to_url`` is false. ``expire_files()`` makes every file URL 404, because their
  lifetime is undocumented (§2.3).
- ``block_next()`` answers a generation with empty ``data``: the safety-block shape is ASSUMED
  (§2.3).
- Errors are scriptable with AIML's body shape ``{message, path, requestId, statusCode,
  timestamp}`` (§2.4): 403 out of credits, 429, 500/503, 504 ``Generation timeout``, an HTML 502
  page, and a slow answer, dropped connection or 504 *after* the generation was done and billed:
  the double-charge trap of a synchronous API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from tests.fakes.loopback import (
    IMAGEN_PIXELS,
    FakeServer,
    ScriptedResponse,
    canned,
    render_image,
)

MODELS = {
    "fast": "google/imagen-4.0-fast-generate-001",
    "standard": "google/imagen-4.0-generate-001",
    "ultra": "google/imagen-4.0-ultra-generate-001",
}
ENUMS: dict[str, tuple[str, ...]] = {
    "aspect_ratio": tuple(IMAGEN_PIXELS),
    "person_generation": ("dont_allow", "allow_adult"),
    "safety_setting": ("block_low_and_above", "block_medium_and_above", "block_only_high"),
}
INTEGER_RANGES = {"num_images": (1, 4), "seed": (0, 4294967295)}
BOOLEANS = ("convert_base64_to_url", "enhance_prompt", "add_watermark")
BODY_KEYS = {"model", "prompt", *ENUMS, *INTEGER_RANGES, *BOOLEANS}
MAX_PROMPT_LENGTH = 400
GENERATIONS_PATH = "/v1/images/generations"
# AIML's Express-style servers answer with the charset spelled out (§2.3).
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# What the fake's "LLM rewrite" appends when enhance_prompt is on (the real rewrite is free text).
ENHANCEMENT = ", highly detailed, cinematic lighting"
# SEED-3's example usage for one image; the real price per image is unknown (§2.4).
USAGE_PER_IMAGE = 42000
# Verbatim messages (providers.md §2.4, AIML-err).
UNAUTHORIZED = (
    "This request requires a valid API key. "
    "You can create a new API key on the Billing page: https://aimlapi.com/app/keys"
)
OUT_OF_CREDITS = (
    "You've run out of credits. Please top up your balance or update your payment method to "
    "continue: https://aimlapi.com/app/billing/"
)

UsageField = Literal["credits_used", "tokens_used"]


def aiml_error(status: int, message: str) -> ScriptedResponse:
    """An answer in AIML's error shape (§2.4), e.g. ``aiml_error(503, "Service unavailable")``."""
    return ScriptedResponse.json(
        status,
        _error_body(status, message, GENERATIONS_PATH, time.time()),
        content_type=JSON_CONTENT_TYPE,
    )


def out_of_credits() -> ScriptedResponse:
    """403, not 402, is how AIML says the balance is empty (§2.4)."""
    return aiml_error(403, OUT_OF_CREDITS)


def throttled(retry_after: float | None = None) -> ScriptedResponse:
    """429 with ``statusCode`` as the string ``"429"``, as AIML's own example has it (§2.4)."""
    return ScriptedResponse.json(
        429,
        _error_body("429", "Too Many Requests", GENERATIONS_PATH, time.time()),
        content_type=JSON_CONTENT_TYPE,
        retry_after=retry_after,
    )


def generation_timeout() -> ScriptedResponse:
    """504: ambiguous, the generation may still be billed (§2.4); see ``script_generation``."""
    return aiml_error(504, "Generation timeout")


@dataclass(frozen=True)
class Generation:
    """One accepted, billed generation: what was asked, and what the fake made of it."""

    id: str
    body: dict[str, Any]
    images: int  # 0 when blocked
    prompt_used: str

    def png(self, index: int) -> bytes:
        """The image at ``index``: the same bytes for the URL and for ``b64_json``."""
        aspect_ratio = self.body.get("aspect_ratio", "1:1")
        return render_image(f"{self.prompt_used}#{index}", aspect_ratio, png=True)[0]


class FakeAiml(FakeServer):
    """AIML's synchronous ``/v1/images/generations`` plus the CDN its image URLs point at."""

    def __init__(
        self,
        *,
        token: str = "aiml_fake_key",
        latency: float = 0.05,
        success_status: int = 200,
        usage_field: UsageField = "credits_used",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.token = token
        self.latency = latency
        self.success_status = success_status
        self.usage_field: UsageField = usage_field
        self.clock = clock
        self.generations: list[Generation] = []
        self._generation_script: list[ScriptedResponse] = []
        self._file_script: list[ScriptedResponse] = []
        self._blocks_pending = 0
        self._files_expired = False

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_post(GENERATIONS_PATH, self._generate)
        app.router.add_get(r"/files/{id}/{index:\d+}.png", self._file)

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    # ------------------------------------------------------------------ knobs for tests

    def script_generation(self, *responses: ScriptedResponse) -> None:
        """Answers for the next authorized POSTs, in order, instead of normal behaviour.

        A response with ``then_handle`` (``slow``, ``disconnect``) lets the request through
        validation and bills the generation, then answers late, drops the connection, or, when it
        has a body (``replace(generation_timeout(), then_handle=True)``), answers that body.
        """
        self._generation_script.extend(responses)

    def script_file(self, *responses: ScriptedResponse) -> None:
        """Answers for the next image file GETs, in order."""
        self._file_script.extend(responses)

    def block_next(self) -> None:
        """The next accepted generation answers success with ``"data": []``, as a safety block."""
        self._blocks_pending += 1

    def expire_files(self) -> None:
        """Every file URL answers 404 from now on, as a short-lived CDN link would."""
        self._files_expired = True

    @property
    def generation_count(self) -> int:
        return len(self.generations)

    # ------------------------------------------------------------------ handlers

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(request, 401, UNAUTHORIZED)
        scripted = self._generation_script.pop(0) if self._generation_script else None
        if scripted is not None and not scripted.then_handle:
            return await canned(scripted, request)
        try:
            payload = json.loads(body)
        except ValueError:
            return self._error(request, 400, "Body validation error! Expected object")
        problem = _validation_problem(payload)
        if problem is not None:
            return self._error(request, 400, f"Body validation error! {problem}")
        # Billed on arrival: a client that gives up mid-generation still pays for it.
        generation = self._accept(payload)
        await asyncio.sleep(self.latency)
        if scripted is None:
            return _json(self.success_status, self._result(generation))
        if scripted.body or scripted.drops_connection:
            # Done and billed, yet the client sees an error or nothing at all.
            return await canned(scripted, request)
        await asyncio.sleep(scripted.delay)
        return _json(self.success_status, self._result(generation))

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if self._file_script:
            return await canned(self._file_script.pop(0), request)
        generation = next((g for g in self.generations if g.id == request.match_info["id"]), None)
        index = int(request.match_info["index"])
        if self._files_expired or generation is None or index >= generation.images:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=generation.png(index), content_type="image/png")

    # ------------------------------------------------------------------ generations

    def _accept(self, payload: dict[str, Any]) -> Generation:
        blocked = self._blocks_pending > 0
        if blocked:
            self._blocks_pending -= 1
        prompt: str = payload["prompt"]
        generation = Generation(
            # Shaped like the CDN's file names: epoch milliseconds, then a UUID (§2.3).
            id=f"{int(self.clock() * 1000)}-{uuid.uuid4()}",
            body=payload,
            images=0 if blocked else int(payload.get("num_images", 1)),
            prompt_used=prompt + ENHANCEMENT if payload.get("enhance_prompt", True) else prompt,
        )
        self.generations.append(generation)
        return generation

    def _result(self, generation: Generation) -> dict[str, Any]:
        inline = generation.body.get("convert_base64_to_url", True) is False
        data: list[dict[str, Any]] = []
        for index in range(generation.images):
            item: dict[str, Any] = {"mime_type": "image/png"}
            if inline:
                item["url"] = None
                item["b64_json"] = base64.b64encode(generation.png(index)).decode()
            else:
                item["url"] = f"{self.origin}/files/{generation.id}/{index}.png"
            item["prompt"] = generation.prompt_used
            data.append(item)
        usage = {self.usage_field: USAGE_PER_IMAGE * generation.images}
        return {"data": data, "meta": {"usage": usage}}

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        return _json(status, _error_body(status, message, request.path, self.clock()))


# ---------------------------------------------------------------------- helpers


def _json(status: int, payload: object) -> web.Response:
    response = web.Response(status=status, body=json.dumps(payload).encode())
    response.content_type = "application/json"
    response.charset = "utf-8"
    return response


def _error_body(status: int | str, message: str, path: str, now: float) -> dict[str, object]:
    timestamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
    return {
        "message": message,
        "path": path,
        "requestId": str(uuid.uuid4()),
        "statusCode": status,
        "timestamp": timestamp.replace("+00:00", "Z"),
    }


def _validation_problem(payload: object) -> str | None:
    """The first violation of the schema (§2.2) as ``field: hint``, or None when it is valid."""
    if not isinstance(payload, dict):
        return f"Expected object, received {_type_name(payload)}"
    if "model" not in payload:
        return "model: Required"
    if payload["model"] not in MODELS.values():
        return f"model: {_enum_hint(tuple(MODELS.values()), payload['model'])}"
    prompt_problem = _prompt_problem(payload)
    if prompt_problem is not None:
        return f"prompt: {prompt_problem}"
    for key, (low, high) in INTEGER_RANGES.items():
        if key in payload:
            problem = _integer_problem(payload[key], low, high)
            if problem is not None:
                return f"{key}: {problem}"
    for key, allowed in ENUMS.items():
        if key in payload and payload[key] not in allowed:
            return f"{key}: {_enum_hint(allowed, payload[key])}"
    for key in BOOLEANS:
        if key in payload and not isinstance(payload[key], bool):
            return f"{key}: Expected boolean, received {_type_name(payload[key])}"
    unknown = sorted(set(payload) - BODY_KEYS)
    if unknown:
        return "Unrecognized key(s) in object: " + ", ".join(f"'{key}'" for key in unknown)
    return None


def _prompt_problem(payload: dict[str, Any]) -> str | None:
    if "prompt" not in payload:
        return "Required"
    prompt = payload["prompt"]
    if not isinstance(prompt, str):
        return f"Expected string, received {_type_name(prompt)}"
    # A JavaScript validator measures .length in UTF-16 code units, so an emoji counts twice.
    length = len(prompt.encode("utf-16-le", "surrogatepass")) // 2
    if length == 0:
        return "String must contain at least 1 character(s)"
    if length > MAX_PROMPT_LENGTH:
        return f"String must contain at most {MAX_PROMPT_LENGTH} character(s)"
    return None


def _integer_problem(value: object, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"Expected number, received {_type_name(value)}"
    # JSON has one number type: 2.0 is the integer 2 to a JavaScript server.
    if not float(value).is_integer():
        return "Expected integer, received float"
    if value < low:
        return f"Number must be greater than or equal to {low}"
    if value > high:
        return f"Number must be less than or equal to {high}"
    return None


def _enum_hint(allowed: tuple[str, ...], received: object) -> str:
    expected = " | ".join(f"'{value}'" for value in allowed)
    shown = f"'{received}'" if isinstance(received, str) else _type_name(received)
    return f"Invalid enum value. Expected {expected}, received {shown}"


def _type_name(value: object) -> str:
    """The JSON type of a parsed value, named as a JavaScript validator names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
