"""A fake Replicate (or Replicate-format proxy) on 127.0.0.1, speaking providers.md §1 and §6.

It is a real HTTP server, so the bot's own client runs unmodified against it:

- ``POST {base}/models/{owner}/{name}/predictions`` answers 201 ``starting`` (202 when a
  ``Prefer: wait`` hold ends early), with ``ratelimit-*`` and ``Location`` headers, and rejects
  unknown body keys, unknown input keys and bad enums with 422 problem JSON, because the real
  schema says ``additionalProperties: false`` (§1.2, §1.4).
- A prediction walks ``starting → processing → succeeded | failed`` on the wall clock; its
  output is one URL string (or a list, or a ``data:`` URI) of a real JPEG/PNG at Imagen's pixel
  size for the aspect ratio, served under ``/delivery/``; after ``retention_seconds`` the object
  shows ``output: null, data_removed: true`` and the file answers 404 (§1.3).
- ``Cancel-After`` aborts a prediction that had not started by then (§1.2); cancel answers 200.
- Official mode signs terminal webhooks per §1.6 (a secret served at
  ``GET /v1/webhooks/default/secret``), can send duplicate copies with one ``webhook-id``, and
  retries a delivery that got no 2xx, only for the terminal event (§1.5).
- ``GET {base}/predictions`` lists predictions newest first with a ``next`` cursor link (on the
  proxy's unserved host in proxy mode), showing each one's ``webhook`` unless told not to;
  ``list_overrides`` changes or (with ``ABSENT``) leaves out fields of one entry, for lists
  that show less than Replicate's.
- Proxy mode serves under ``/replicate/v1``, sends no webhooks and puts ``urls.*`` on a host
  nobody serves, as kkiai does (§1.1).
- Errors are scriptable: 401 with Replicate's verbatim body, 429 with ``Retry-After``, an HTML
  502 page, a slow answer (the create still happens: that is the double-charge trap), and a
  dropped connection.
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
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from aiohttp import web

from tests.fakes.loopback import (
    IMAGEN_PIXELS,
    FakeServer,
    ScriptedResponse,
    canned,
    drop,
    render_image,
)

MODELS = ("google/imagen-4-fast", "google/imagen-4", "google/imagen-4-ultra")
BODY_KEYS = {"input", "webhook", "webhook_events_filter", "stream", "webhook_completed"}
INPUT_ENUMS = {
    "aspect_ratio": set(IMAGEN_PIXELS),
    "output_format": {"jpg", "png"},
    "safety_filter_level": {
        "block_low_and_above",
        "block_medium_and_above",
        "block_only_high",
    },
    "image_size": {"1K", "2K"},
}
WEBHOOK_EVENTS = {"start", "output", "logs", "completed"}
TERMINAL = {"succeeded", "failed", "canceled", "aborted"}
# Verbatim bodies (providers.md §1.7).
UNAUTHENTICATED = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}
THROTTLED = {"detail": "Request was throttled. Your rate limit resets in ~30s."}
SAFETY_ERROR = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
# A host:port nothing listens on, for the proxy's urls.* (clients must not follow them).
UNSERVED_HOST = "http://127.0.0.1:1"
# In ``list_overrides``: the list entry leaves this field out.
ABSENT: Any = object()

OutputStyle = Literal["string", "list", "data_uri"]


def throttled(retry_after: float | None = None) -> ScriptedResponse:
    """Replicate's 429 (providers.md §1.7), with a Retry-After header when given."""
    return ScriptedResponse.json(
        429, THROTTLED, content_type="application/problem+json", retry_after=retry_after
    )


def problem(status: int, detail: str) -> ScriptedResponse:
    return ScriptedResponse.json(
        status, {"detail": detail, "status": status}, content_type="application/problem+json"
    )


@dataclass
class Prediction:
    id: str
    model: str
    input: dict[str, Any]
    created: float
    start_delay: float
    processing_seconds: float
    webhook: str | None
    events_filter: list[str] | None
    cancel_after: float | None
    error: str | None
    output_style: OutputStyle
    canceled_at: float | None = None
    removed: bool = False

    @property
    def started(self) -> float:
        return self.created + self.start_delay

    @property
    def finished(self) -> float:
        return self.started + self.processing_seconds

    def _ended_early(self) -> tuple[str, float] | None:
        """(status, when) if a cancel or the Cancel-After deadline ended it before it finished.

        The deadline aborts a prediction that had not started and cancels a running one (§1.2).
        """
        endings: list[tuple[str, float]] = []
        if self.cancel_after is not None:
            deadline = self.created + self.cancel_after
            if deadline < self.finished:
                endings.append(("aborted" if deadline < self.started else "canceled", deadline))
        if self.canceled_at is not None and self.canceled_at < self.finished:
            endings.append(("canceled", self.canceled_at))
        return min(endings, key=lambda ending: ending[1], default=None)

    def status(self, now: float) -> str:
        early = self._ended_early()
        if early is not None and now >= early[1]:
            return early[0]
        if now < self.started:
            return "starting"
        if now < self.finished:
            return "processing"
        return "failed" if self.error else "succeeded"

    def ends_at(self) -> float:
        """When it becomes terminal, unless canceled before then."""
        early = self._ended_early()
        return early[1] if early is not None else self.finished

    def completed_at(self, now: float) -> float | None:
        ends = self.ends_at()
        return ends if now >= ends else None


@dataclass(frozen=True)
class WebhookDelivery:
    prediction_id: str
    url: str
    webhook_id: str
    status: int | None  # None when the bot could not be reached


class FakeReplicate(FakeServer):
    """Official Replicate (``mode="official"``) or a kkiai-style proxy (``mode="proxy"``)."""

    def __init__(
        self,
        *,
        mode: Literal["official", "proxy"] = "official",
        token: str = "r8_fake_token",
        start_delay: float = 0.05,
        processing_seconds: float = 0.1,
        retention_seconds: float = 3600.0,
        output_style: OutputStyle = "string",
        send_webhooks: bool | None = None,
        webhook_copies: int = 1,
        webhook_retry_delays: tuple[float, ...] = (0.2, 0.5),
        serves_list: bool = True,
        list_shows_webhooks: bool = True,
        list_page_size: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.mode = mode
        # GET /predictions: Replicate's list (providers.md §1.1); whether a proxy has it and
        # whether list entries show the webhook URL are not documented, so both are knobs.
        self.serves_list = serves_list
        self.list_shows_webhooks = list_shows_webhooks
        self.list_page_size = list_page_size
        # Prediction id -> fields its list entry shows instead (ABSENT: not shown at all).
        self.list_overrides: dict[str, dict[str, Any]] = {}
        self.token = token
        self.start_delay = start_delay
        self.processing_seconds = processing_seconds
        self.retention_seconds = retention_seconds
        self.output_style: OutputStyle = output_style
        self.send_webhooks = mode == "official" if send_webhooks is None else send_webhooks
        self.webhook_copies = webhook_copies
        self.webhook_retry_delays = webhook_retry_delays
        self.clock = clock
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.predictions: dict[str, Prediction] = {}
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._create_script: list[ScriptedResponse] = []
        self._get_script: list[ScriptedResponse] = []
        self._delivery_script: list[ScriptedResponse] = []
        self._next_errors: list[str] = []
        self._changed: dict[str, asyncio.Event] = {}
        self._delivered = asyncio.Condition()

    # ------------------------------------------------------------------ lifecycle

    def routes(self, app: web.Application) -> None:
        prefix = "/v1" if self.mode == "official" else "/replicate/v1"
        app.router.add_post(prefix + "/models/{owner}/{name}/predictions", self._create)
        app.router.add_get(prefix + "/predictions", self._list)
        app.router.add_get(prefix + "/predictions/{id}", self._get)
        app.router.add_post(prefix + "/predictions/{id}/cancel", self._cancel)
        app.router.add_get(prefix + "/webhooks/default/secret", self._secret)
        app.router.add_get("/delivery/{id}/{filename}", self._file)

    @property
    def base_url(self) -> str:
        return self.origin + ("/v1" if self.mode == "official" else "/replicate/v1")

    # ------------------------------------------------------------------ knobs for tests

    def script_create(self, *responses: ScriptedResponse) -> None:
        self._create_script.extend(responses)

    def script_get(self, *responses: ScriptedResponse) -> None:
        self._get_script.extend(responses)

    def script_delivery(self, *responses: ScriptedResponse) -> None:
        self._delivery_script.extend(responses)

    def fail_next(self, error: str = SAFETY_ERROR) -> None:
        """The next created prediction ends ``failed`` with this error text."""
        self._next_errors.append(error)

    def expire(self, prediction_id: str) -> None:
        """Drop the prediction's output now, as Replicate does after an hour."""
        self.predictions[prediction_id].removed = True

    @property
    def create_count(self) -> int:
        return len(self.predictions)

    async def wait_for_webhook_deliveries(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), self._delivered:
            await self._delivered.wait_for(lambda: len(self.webhook_deliveries) >= count)

    # ------------------------------------------------------------------ handlers

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if not self._authorized(request):
            return _problem(401, UNAUTHENTICATED)
        scripted = self._create_script.pop(0) if self._create_script else None
        if scripted is not None and not scripted.then_handle:
            return await canned(scripted, request)
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        if model not in MODELS:
            return _problem(404, {"detail": "The requested resource could not be found."})
        try:
            payload = json.loads(body)
        except ValueError:
            return _problem(400, {"detail": "Request body is not valid JSON", "status": 400})
        problem = _validation_problem(payload)
        if problem:
            return _problem(422, {"title": "Input validation failed", "detail": problem})
        prediction = self._new_prediction(model, payload, request.headers.get("Cancel-After"))
        self._schedule_webhook(prediction)
        if scripted is not None:
            # Created, but the answer is late or never arrives: the double-charge trap.
            await asyncio.sleep(scripted.delay)
            if scripted.drops_connection:
                return drop(request)
        status = 201
        headers = {"ratelimit-remaining": "599", "ratelimit-reset": "1"}
        wait = _preferred_wait(request.headers.get("Prefer"))
        if wait is not None:
            headers["Preference-Applied"] = request.headers["Prefer"]
            hold_until = min(prediction.finished, self.clock() + wait)
            await asyncio.sleep(max(0.0, hold_until - self.clock()))
            if prediction.status(self.clock()) not in TERMINAL:
                status = 202
        headers["Location"] = self._urls(prediction.id)["get"]
        return _json(status, self._render(prediction), headers)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if not self._authorized(request):
            return _problem(401, UNAUTHENTICATED)
        if self._get_script:
            return await canned(self._get_script.pop(0), request)
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return _problem(404, {"detail": "Not found.", "status": 404})
        return _json(200, self._render(prediction), {"ratelimit-remaining": "2999"})

    async def _list(self, request: web.Request) -> web.StreamResponse:
        """Newest first, ``list_page_size`` a page, ``next`` holding the cursor (§1.1)."""
        await self.record(request)
        if not self._authorized(request):
            return _problem(401, UNAUTHENTICATED)
        if not self.serves_list:
            return _problem(404, {"detail": "Not found.", "status": 404})
        newest_first = sorted(self.predictions.values(), key=lambda p: p.created, reverse=True)
        start = int(request.query.get("cursor", "0"))
        page = newest_first[start : start + self.list_page_size]
        results = []
        for prediction in page:
            rendered = {**self._render(prediction), "source": "api"}
            if self.list_shows_webhooks and prediction.webhook:
                rendered["webhook"] = prediction.webhook
            rendered.update(self.list_overrides.get(prediction.id, {}))
            results.append({key: value for key, value in rendered.items() if value is not ABSENT})
        more = start + self.list_page_size < len(newest_first)
        base = self.base_url if self.mode == "official" else UNSERVED_HOST + "/v1"
        next_page = f"{base}/predictions?cursor={start + self.list_page_size}" if more else None
        return _json(200, {"next": next_page, "previous": None, "results": results})

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if not self._authorized(request):
            return _problem(401, UNAUTHENTICATED)
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None:
            return _problem(404, {"detail": "Not found.", "status": 404})
        now = self.clock()
        if prediction.status(now) not in TERMINAL:
            prediction.canceled_at = now
            self._changed.setdefault(prediction.id, asyncio.Event()).set()
        return _json(200, self._render(prediction))

    async def _secret(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if not self._authorized(request):
            return _problem(401, UNAUTHENTICATED)
        return _json(200, {"key": self.webhook_secret})

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if self._delivery_script:
            return await canned(self._delivery_script.pop(0), request)
        prediction = self.predictions.get(request.match_info["id"])
        if prediction is None or self._removed(prediction):
            return web.Response(status=404, text="Not Found")
        data, content_type = _image_bytes(prediction)
        return web.Response(body=data, content_type=content_type)

    # ------------------------------------------------------------------ predictions

    def _new_prediction(
        self, model: str, payload: dict[str, Any], cancel_after: str | None
    ) -> Prediction:
        prediction_id = secrets.token_hex(13)[:26]
        prediction = Prediction(
            id=prediction_id,
            model=model,
            input=payload["input"],
            created=self.clock(),
            start_delay=self.start_delay,
            processing_seconds=self.processing_seconds,
            webhook=payload.get("webhook"),
            events_filter=payload.get("webhook_events_filter"),
            cancel_after=_duration(cancel_after),
            error=self._next_errors.pop(0) if self._next_errors else None,
            output_style=self.output_style,
        )
        self.predictions[prediction_id] = prediction
        return prediction

    def _removed(self, prediction: Prediction) -> bool:
        completed = prediction.completed_at(self.clock())
        expired = completed is not None and self.clock() - completed >= self.retention_seconds
        return prediction.removed or expired

    def _urls(self, prediction_id: str) -> dict[str, str]:
        # A proxy echoes urls on a host its key does not open (providers.md §0.5).
        base = self.base_url if self.mode == "official" else UNSERVED_HOST + "/v1"
        return {
            "get": f"{base}/predictions/{prediction_id}",
            "cancel": f"{base}/predictions/{prediction_id}/cancel",
            "web": f"https://replicate.com/p/{prediction_id}",
        }

    def _render(self, prediction: Prediction) -> dict[str, Any]:
        now = self.clock()
        status = prediction.status(now)
        removed = status in TERMINAL and self._removed(prediction)
        rendered: dict[str, Any] = {
            "id": prediction.id,
            "model": prediction.model,
            "version": "hidden",
            "input": {} if removed else prediction.input,
            "logs": "",
            "output": None,
            "data_removed": removed,
            "error": prediction.error if status == "failed" else None,
            "status": status,
            "created_at": _iso(prediction.created),
            "urls": self._urls(prediction.id),
        }
        if status != "starting" and status != "aborted":
            rendered["started_at"] = _iso(prediction.started)
        completed = prediction.completed_at(now)
        if completed is not None:
            rendered["completed_at"] = _iso(completed)
            rendered["metrics"] = {"predict_time": round(prediction.processing_seconds, 3)}
        if status == "succeeded" and not removed:
            rendered["output"] = self._output(prediction)
            rendered["metrics"]["image_count"] = 1
        return rendered

    def _output(self, prediction: Prediction) -> str | list[str]:
        if prediction.output_style == "data_uri":
            data, content_type = _image_bytes(prediction)
            return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
        extension = prediction.input.get("output_format", "jpg")
        url = f"{self.origin}/delivery/{prediction.id}/output.{extension}"
        return [url] if prediction.output_style == "list" else url

    # ------------------------------------------------------------------ webhooks

    def _schedule_webhook(self, prediction: Prediction) -> None:
        if not self.send_webhooks or not prediction.webhook:
            return
        self.in_background(self._deliver_terminal_webhook(prediction))

    async def _deliver_terminal_webhook(self, prediction: Prediction) -> None:
        changed = self._changed.setdefault(prediction.id, asyncio.Event())
        while prediction.completed_at(self.clock()) is None:
            changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.01, prediction.ends_at() - self.clock())):
                    await changed.wait()
        assert prediction.webhook is not None
        webhook_id = "msg_" + secrets.token_urlsafe(18)
        body = json.dumps(self._render(prediction)).encode()
        for _ in range(self.webhook_copies):
            for retry_delay in (*self.webhook_retry_delays, None):
                status = await self._post_webhook(prediction, webhook_id, body)
                if status is not None and 200 <= status < 300:
                    break
                if retry_delay is None:
                    break
                # Only the terminal webhook is retried, with the same webhook-id (§1.5).
                await asyncio.sleep(retry_delay)

    async def _post_webhook(
        self, prediction: Prediction, webhook_id: str, body: bytes
    ) -> int | None:
        assert prediction.webhook is not None
        headers = {"Content-Type": "application/json"}
        if self.mode == "official":
            headers.update(self.signature_headers(webhook_id, int(self.clock()), body))
        status: int | None = None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self.session.post(
                prediction.webhook, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        async with self._delivered:
            self.webhook_deliveries.append(
                WebhookDelivery(prediction.id, prediction.webhook, webhook_id, status)
            )
            self._delivered.notify_all()
        return status

    def signature_headers(self, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """Standard Webhooks headers, computed independently of the bot's verifier (§1.6)."""
        key = base64.b64decode(self.webhook_secret.split("_", 1)[1])
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{signature}",
        }


# ---------------------------------------------------------------------- helpers


def _json(status: int, payload: object, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, body=json.dumps(payload).encode(), headers=headers)
    response.content_type = "application/json"
    response.charset = "UTF-8"  # Replicate answers "application/json; charset=UTF-8" (§1.2)
    return response


def _problem(status: int, payload: object) -> web.Response:
    response = web.Response(status=status, body=json.dumps(payload).encode())
    response.content_type = "application/problem+json"
    return response


def _validation_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "body must be a JSON object"
    unknown = set(payload) - BODY_KEYS
    if unknown:
        return f"Additional properties are not allowed ({', '.join(sorted(unknown))})"
    model_input = payload.get("input")
    if not isinstance(model_input, dict):
        return "input is required"
    if not isinstance(model_input.get("prompt"), str) or not model_input["prompt"]:
        return "input.prompt: Required"
    unknown = set(model_input) - {"prompt", *INPUT_ENUMS}
    if unknown:
        return f"input: Additional properties are not allowed ({', '.join(sorted(unknown))})"
    for key, allowed in INPUT_ENUMS.items():
        if key in model_input and model_input[key] not in allowed:
            return f"input.{key}: {model_input[key]!r} is not one of {sorted(allowed)}"
    events = payload.get("webhook_events_filter")
    if events is not None and (not isinstance(events, list) or not set(events) <= WEBHOOK_EVENTS):
        return f"webhook_events_filter: must be a subset of {sorted(WEBHOOK_EVENTS)}"
    return None


def _preferred_wait(prefer: str | None) -> float | None:
    if prefer is None or not prefer.startswith("wait"):
        return None
    _, _, seconds = prefer.partition("=")
    return float(seconds) if seconds else 60.0


def _duration(value: str | None) -> float | None:
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    return float(value[:-1]) * units[value[-1]]


def _iso(moment: float) -> str:
    return (
        datetime.fromtimestamp(moment, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _image_bytes(prediction: Prediction) -> tuple[bytes, str]:
    return render_image(
        prediction.input["prompt"],
        prediction.input.get("aspect_ratio", "1:1"),
        png=prediction.input.get("output_format") == "png",
    )
