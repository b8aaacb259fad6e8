"""A fake Apikley (a clone of KIE.ai's market API) on 127.0.0.1, speaking providers.md §3 and §6.

It is a real HTTP server, so the bot's own client runs unmodified against it:

- Every answer is HTTP 200 with a ``{"code", "msg", "data"}`` envelope; the real status lives in
  ``code`` (§0.7, §3.1). A wrong or missing Bearer token is ``code 401``, not HTTP 401.
- ``POST /api/v1/jobs/createTask`` validates per tier exactly as §3.1's table says (the three
  tiers do not share a schema: ``num_images`` is a string and only on fast, ``seed`` is an
  integer on fast and a string elsewhere, no safety or output-format parameter exists) and
  answers ``code 422`` with what is wrong, creating nothing. More than ``create_limit`` creates
  in the sliding window answer ``code 429`` and are not queued (§3.5).
- A task walks ``waiting → queuing → generating → success | fail`` on the clock.
  ``GET /api/v1/jobs/recordInfo`` renders it as §3.3 does: ``param`` and ``resultJson`` are JSON
  *strings*, times are Unix milliseconds, an unknown id is ``code 422 "recordInfo is null"``, and
  the message key is ``msg`` or ``message`` as the two halves of the docs disagree.
- Results are real PNGs at Imagen's pixel size for the aspect ratio (default 16:9 on fast, 1:1 on
  the other tiers), one per image, served without auth under ``/files/``; ``expire_files()``
  makes them answer 404, as KIE's URLs do after about a day.
- A task with a ``callBackUrl`` is reported there once it ends, in the KIE-cb shape (§3.4),
  optionally signed with KIE's HMAC over ``taskId.timestamp``, optionally duplicated or never
  sent, and never retried: polling has to stay the source of truth.
- Errors are scriptable: every documented envelope code (the constants below), a slow answer or
  a dropped connection after the task was created (the double-charge trap), and failed tasks.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp import web

from tests.fakes.loopback import (
    FakeServer,
    ScriptedResponse,
    canned,
    drop,
    render_image,
)

MODELS = {
    "fast": "google/imagen4-fast",
    "standard": "google/imagen4",
    "ultra": "google/imagen4-ultra",
}
FAST = MODELS["fast"]
MODEL_IDS = tuple(MODELS.values())
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "3:4", "4:3")
NUM_IMAGES = ("1", "2", "3", "4")
BODY_KEYS = {"model", "callBackUrl", "input"}
INPUT_KEYS = {
    FAST: {"prompt", "negative_prompt", "aspect_ratio", "num_images", "seed"},
    MODELS["standard"]: {"prompt", "negative_prompt", "aspect_ratio", "seed"},
    MODELS["ultra"]: {"prompt", "negative_prompt", "aspect_ratio", "seed"},
}
MAX_PROMPT = 5000
MAX_STRING_SEED = 500
# KIE's catalogue prices per image (§3.5); Apikley's are unknown, so these only make the
# callback's credit fields move plausibly.
CREDITS_PER_IMAGE = {FAST: 4, MODELS["standard"]: 8, MODELS["ultra"]: 12}
STARTING_CREDITS = 10_000
SUCCEEDED_CALLBACK = "Playground task completed successfully."
FAILED_CALLBACK = "Playground task failed."
CLOCK_POLL_SECONDS = 0.01
PROHIBITED = "Invalid prompt: prompt contains prohibited content"

MessageKey = Literal["msg", "message"]


def envelope(
    code: int, msg: str, data: object = None, *, message_key: MessageKey = "msg"
) -> ScriptedResponse:
    """KIE's answer shape: always HTTP 200, the outcome in ``code`` (§0.7, §3.1)."""
    return ScriptedResponse.json(200, {"code": code, message_key: msg, "data": data})


# The documented envelopes (§3.2), ready for script_create / script_record. The messages are
# the OpenAPI descriptions of each code, except where a verbatim body is known (§3.1, §3.2).
# The text after "failed." in the 401 is not documented: only its start is quoted.
UNAUTHORIZED = envelope(401, "Unauthorized \N{EN DASH} Authentication failed. Check your API key.")
INSUFFICIENT_CREDITS = envelope(
    402, "Insufficient Credits - Account does not have enough credits to perform the operation"
)
VALIDATION_ERROR = envelope(
    422, "Validation Error - The request parameters failed validation checks"
)
RATE_LIMITED = envelope(429, "Rate limit exceeded")
MAINTENANCE = envelope(455, "Service Unavailable - System is currently undergoing maintenance")
SERVER_ERROR = envelope(
    500, "Server Error - An unexpected error occurred while processing the request"
)
# Validation reported as a 500, as the live API is said to do: must not be retried blindly.
FIELD_REQUIRED = envelope(500, "This field is required")
GENERATION_FAILED = envelope(501, "Generation Failed - Content generation task failed")
FEATURE_DISABLED = envelope(505, "Feature Disabled - The requested feature is currently disabled")
TASK_ID_REQUIRED = envelope(400, "taskId parameter is required")
RECORD_IS_NULL = envelope(422, "recordInfo is null")


def sign(key: str, task_id: str, timestamp: int) -> str:
    """KIE's callback signature (§3.4): the key as raw UTF-8, the body deliberately not covered."""
    message = f"{task_id}.{timestamp}".encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


@dataclass
class Task:
    id: str
    model: str
    input: dict[str, Any]
    callback_url: str | None
    param: str  # the request body as a JSON string, as recordInfo echoes it
    created: float
    stage_seconds: float
    processing_seconds: float
    fail_code: str | None
    fail_msg: str

    @property
    def queued_at(self) -> float:
        return self.created + self.stage_seconds

    @property
    def generating_at(self) -> float:
        return self.queued_at + self.stage_seconds

    @property
    def finished(self) -> float:
        return self.generating_at + self.processing_seconds

    def state(self, now: float) -> str:
        if now < self.queued_at:
            return "waiting"
        if now < self.generating_at:
            return "queuing"
        if now < self.finished:
            return "generating"
        return "success" if self.fail_code is None else "fail"

    def done(self, now: float) -> bool:
        return now >= self.finished

    def updated_at(self, now: float) -> float:
        """When the state last changed, which is what KIE's ``updateTime`` reports."""
        changes = (self.created, self.queued_at, self.generating_at, self.finished)
        return max((moment for moment in changes if moment <= now), default=self.created)

    def cost_seconds(self, now: float) -> float:
        return min(max(0.0, now - self.generating_at), self.processing_seconds)

    @property
    def image_count(self) -> int:
        """Only fast takes ``num_images``; the other tiers make one image per task (§3.1)."""
        return int(self.input.get("num_images", "1")) if self.model == FAST else 1

    @property
    def aspect_ratio(self) -> str:
        return str(self.input.get("aspect_ratio", "16:9" if self.model == FAST else "1:1"))


@dataclass(frozen=True)
class CallbackDelivery:
    task_id: str
    url: str
    body: bytes
    headers: dict[str, str]
    status: int | None  # None when the bot could not be reached


class FakeApikley(FakeServer):
    """Apikley's market API: createTask, recordInfo, result files and callbacks."""

    def __init__(
        self,
        *,
        token: str = "apikley_fake_key",
        stage_seconds: float = 0.03,
        processing_seconds: float = 0.1,
        send_callbacks: bool = True,
        callback_copies: int = 1,
        message_key: MessageKey = "msg",
        webhook_hmac_key: str | None = None,
        create_limit: tuple[int, float] = (20, 10.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.token = token
        self.stage_seconds = stage_seconds
        self.processing_seconds = processing_seconds
        self.send_callbacks = send_callbacks
        self.callback_copies = callback_copies
        self.message_key: MessageKey = message_key
        self.webhook_hmac_key = webhook_hmac_key
        self.create_limit = create_limit
        self.clock = clock
        self.tasks: dict[str, Task] = {}
        self.callback_deliveries: list[CallbackDelivery] = []
        self._create_script: list[ScriptedResponse] = []
        self._record_script: list[ScriptedResponse] = []
        self._file_script: list[ScriptedResponse] = []
        self._next_failures: list[tuple[str, str]] = []
        self._files_expired = False
        self._delivered = asyncio.Condition()

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/jobs/createTask", self._create)
        app.router.add_get("/api/v1/jobs/recordInfo", self._record_info)
        app.router.add_get(r"/files/{task_id}/{index:\d+}.png", self._file)

    @property
    def base_url(self) -> str:
        """The bot appends ``/api/v1/jobs/...`` itself, as it does to ``https://api.apikley.ru``."""
        return self.origin

    # ------------------------------------------------------------------ knobs for tests

    def script_create(self, *responses: ScriptedResponse) -> None:
        self._create_script.extend(responses)

    def script_record(self, *responses: ScriptedResponse) -> None:
        self._record_script.extend(responses)

    def script_file(self, *responses: ScriptedResponse) -> None:
        self._file_script.extend(responses)

    def fail_next(self, fail_code: str = "422", fail_msg: str = PROHIBITED) -> None:
        """The next created task ends ``fail``: moderation arrives as a state, not an error."""
        self._next_failures.append((fail_code, fail_msg))

    def expire_files(self) -> None:
        """Result URLs answer 404 from now on, as KIE's do after about 24 hours (§3.5)."""
        self._files_expired = True

    @property
    def create_count(self) -> int:
        return len(self.tasks)

    async def wait_for_callbacks(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._delivered:
            await self._delivered.wait_for(lambda: len(self.callback_deliveries) >= count)

    # ------------------------------------------------------------------ handlers

    async def _recorded(self, request: web.Request) -> bytes:
        return await self.record(request)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self._recorded(request)
        if not self._authorized(request):
            return await canned(UNAUTHORIZED, request)
        scripted = self._create_script.pop(0) if self._create_script else None
        if scripted is not None and not scripted.then_handle:
            return await canned(scripted, request)
        if self._recent_creates() >= self.create_limit[0]:
            return await canned(RATE_LIMITED, request)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        problem = _validation_problem(payload)
        if problem is not None:
            return await canned(envelope(422, problem), request)
        task = self._new_task(payload)
        self._schedule_callback(task)
        if scripted is not None:
            # Created, but the answer is late or never arrives: the double-charge trap.
            await asyncio.sleep(scripted.delay)
            if scripted.drops_connection:
                return drop(request)
        return await canned(envelope(200, "success", {"taskId": task.id}), request)

    async def _record_info(self, request: web.Request) -> web.StreamResponse:
        await self._recorded(request)
        if not self._authorized(request):
            return await canned(UNAUTHORIZED, request)
        scripted = await self._scripted(self._record_script, request)
        if scripted is not None:
            return scripted
        task_id = request.query.get("taskId")
        if not task_id:
            return await canned(TASK_ID_REQUIRED, request)
        task = self.tasks.get(task_id)
        if task is None:
            return await canned(RECORD_IS_NULL, request)
        data = self._record(task, self.clock())
        return await canned(envelope(200, "success", data, message_key=self.message_key), request)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await self._recorded(request)
        scripted = await self._scripted(self._file_script, request)
        if scripted is not None:
            return scripted
        task = self.tasks.get(request.match_info["task_id"])
        index = int(request.match_info["index"])
        if (
            self._files_expired
            or task is None
            or task.state(self.clock()) != "success"
            or index >= task.image_count
        ):
            return web.Response(status=404, text="Not Found")
        # Each image of a task gets its own colour, so a client that mixes them up is caught.
        data, content_type = render_image(
            f"{task.input['prompt']}#{index}", task.aspect_ratio, png=True
        )
        return web.Response(body=data, content_type=content_type)

    async def _scripted(
        self, script: list[ScriptedResponse], request: web.Request
    ) -> web.StreamResponse | None:
        """The next scripted answer, or None to answer normally (after any scripted delay)."""
        if not script:
            return None
        scripted = script.pop(0)
        if not scripted.then_handle:
            return await canned(scripted, request)
        await asyncio.sleep(scripted.delay)
        return drop(request) if scripted.drops_connection else None

    # ------------------------------------------------------------------ tasks

    def _recent_creates(self) -> int:
        """Tasks created inside the sliding window; refused requests do not count."""
        now = self.clock()
        window = self.create_limit[1]
        return sum(1 for task in self.tasks.values() if now - task.created < window)

    def _new_task(self, payload: dict[str, Any]) -> Task:
        now = self.clock()
        task_id = f"task_google_{round(now * 1000)}{secrets.token_hex(4)}"
        fail_code, fail_msg = self._next_failures.pop(0) if self._next_failures else (None, "")
        task = Task(
            id=task_id,
            model=payload["model"],
            input=payload["input"],
            callback_url=payload.get("callBackUrl"),
            param=json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
            created=now,
            stage_seconds=self.stage_seconds,
            processing_seconds=self.processing_seconds,
            fail_code=fail_code,
            fail_msg=fail_msg,
        )
        self.tasks[task_id] = task
        return task

    def _record(self, task: Task, now: float) -> dict[str, Any]:
        state = task.state(now)
        urls = [f"{self.origin}/files/{task.id}/{i}.png" for i in range(task.image_count)]
        failed = state == "fail"
        return {
            "taskId": task.id,
            "model": task.model,
            "state": state,
            "param": task.param,
            "resultJson": json.dumps({"resultUrls": urls}) if state == "success" else "",
            "failCode": task.fail_code if failed else "",
            "failMsg": task.fail_msg if failed else "",
            "costTime": _ms(task.cost_seconds(now)),
            "completeTime": _ms(task.finished) if task.done(now) else None,
            "createTime": _ms(task.created),
            "updateTime": _ms(task.updated_at(now)),
        }

    def _consumed(self, task: Task) -> int:
        """Failed tasks are not charged (§3.5)."""
        return 0 if task.fail_code is not None else CREDITS_PER_IMAGE[task.model] * task.image_count

    def _remaining_credits(self, now: float) -> int:
        spent = sum(self._consumed(task) for task in self.tasks.values() if task.done(now))
        return STARTING_CREDITS - spent

    # ------------------------------------------------------------------ callbacks

    def _schedule_callback(self, task: Task) -> None:
        if not self.send_callbacks or not task.callback_url:
            return
        self.in_background(self._call_back(task))

    async def _call_back(self, task: Task) -> None:
        # Nothing signals that an injected clock moved, so it is polled, briefly enough that a
        # test moving a hand clock past the finish sees its callback at once.
        while not task.done(self.clock()):  # noqa: ASYNC110 - no event marks the clock's progress
            await asyncio.sleep(min(CLOCK_POLL_SECONDS, task.finished - self.clock()))
        assert task.callback_url is not None
        now = self.clock()
        data = {
            **self._record(task, now),
            "consumeCredits": self._consumed(task),
            "remainedCredits": self._remaining_credits(now),
        }
        if task.fail_code is None:
            payload = {"code": 200, "data": data, "msg": SUCCEEDED_CALLBACK}
        else:
            payload = {"code": 501, "data": data, "msg": FAILED_CALLBACK}
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.webhook_hmac_key is not None:
            timestamp = int(now)
            headers["X-Webhook-Timestamp"] = str(timestamp)
            headers["X-Webhook-Signature"] = sign(self.webhook_hmac_key, task.id, timestamp)
        # Copies are byte-for-byte replays, headers included; nothing is retried (§3.4).
        for _ in range(self.callback_copies):
            await self._post_callback(task, body, headers)

    async def _post_callback(self, task: Task, body: bytes, headers: dict[str, str]) -> None:
        assert task.callback_url is not None
        status: int | None = None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self.session.post(
                task.callback_url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        async with self._delivered:
            self.callback_deliveries.append(
                CallbackDelivery(task.id, task.callback_url, body, headers, status)
            )
            self._delivered.notify_all()


# ---------------------------------------------------------------------- helpers


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _validation_problem(payload: object) -> str | None:
    """What §3.1's schema rejects, in the words the 422 envelope carries; None if valid."""
    if not isinstance(payload, dict):
        return "request body must be a JSON object"
    unknown = set(payload) - BODY_KEYS
    if unknown:
        return f"unknown parameter: {', '.join(sorted(unknown))}"
    model = payload.get("model")
    if model not in MODEL_IDS:
        return f"model must be one of {', '.join(MODEL_IDS)}"
    callback = payload.get("callBackUrl")
    if callback is not None and not (
        isinstance(callback, str) and callback.startswith(("http://", "https://"))
    ):
        return "callBackUrl must be an http(s) URL"
    model_input = payload.get("input")
    if not isinstance(model_input, dict):
        return "input is required and must be an object"
    return _input_problem(model, model_input)


def _input_problem(model: str, model_input: dict[str, Any]) -> str | None:
    unknown = set(model_input) - INPUT_KEYS[model]
    if unknown:
        return f"input.{', input.'.join(sorted(unknown))}: not a parameter of {model}"
    prompt = model_input.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return "input.prompt is required"
    if len(prompt) > MAX_PROMPT:
        return f"input.prompt must be at most {MAX_PROMPT} characters"
    negative = model_input.get("negative_prompt", "")
    if not isinstance(negative, str) or len(negative) > MAX_PROMPT:
        return f"input.negative_prompt must be a string of at most {MAX_PROMPT} characters"
    if model_input.get("aspect_ratio", ASPECT_RATIOS[0]) not in ASPECT_RATIOS:
        return f"input.aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}"
    if model == FAST:
        if model_input.get("num_images", "1") not in NUM_IMAGES:
            return 'input.num_images must be one of the strings "1", "2", "3", "4"'
        seed = model_input.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            return "input.seed must be an integer"
        return None
    seed = model_input.get("seed", "")
    if not isinstance(seed, str) or len(seed) > MAX_STRING_SEED:
        return f"input.seed must be a string of at most {MAX_STRING_SEED} characters"
    return None
