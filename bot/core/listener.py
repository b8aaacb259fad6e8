"""The aiohttp app that receives provider callbacks.

Transport checks (method, content type, size, query) answer 4xx before anything is parsed;
authentication runs on the raw bytes; a genuine callback is acknowledged at once and the job
service does the work in its own task, so the provider never waits on Discord or disk.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.core.domain import parse_job_id
from bot.core.errors import CallbackRejected

log = logging.getLogger(__name__)
# Enough frames to tell where an unexpected failure happened, few enough for one line.
_FRAMES_LOGGED = 4


class CallbackHandler(Protocol):
    async def handle_callback(
        self,
        provider_name: str,
        *,
        job_id: int,
        token: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> str: ...


def create_listener_app(handler: CallbackHandler, *, max_body_bytes: int) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def callback(request: web.Request) -> web.Response:
        # Path parts and ids come from anyone: logged with %r, so a %0A in them cannot start
        # a forged line of its own.
        provider_name = request.match_info["provider"]
        try:
            job_id, token = _transport_checks(request, max_body_bytes)
            body = await request.read()
            outcome = await handler.handle_callback(
                provider_name, job_id=job_id, token=token, headers=request.headers, body=body
            )
        except CallbackRejected as exc:
            log.warning("callback for %r rejected: %s", provider_name, exc.reason)
            return web.json_response({"error": exc.reason}, status=exc.status)
        except web.HTTPRequestEntityTooLarge:
            log.warning("callback for %r rejected: body too large", provider_name)
            return web.json_response({"error": "body too large"}, status=413)
        # One line per callback at DEBUG: a busy bot receives several per job.
        log.debug("callback for %r job %s: %s", provider_name, job_id, outcome)
        return web.json_response({"status": outcome})

    # client_max_size makes aiohttp itself refuse a longer body while reading it, which also
    # covers chunked requests that carry no Content-Length.
    app = web.Application(client_max_size=max_body_bytes, middlewares=[_last_resort])
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/callbacks/{provider}", callback)
    return app


@web.middleware
async def _last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Whatever a request makes fail still gets a JSON answer, not aiohttp's plain 500 with
    a multi-line traceback in the log.

    Values from the request reach code that may not expect them (a header's non-UTF-8 bytes
    are lone surrogates, which ``str.encode`` refuses): such a failure is the request's fault,
    so a 400 and a warning; anything else is the bot's, so a 500 and an error. Either is logged
    once, as one escaped line naming where it happened: the exception's text may carry request
    values, so it is logged with %r, and the frames that locate the fault carry none.
    """
    try:
        return await handler(request)
    except web.HTTPException:  # the router's own 404 and 405
        raise
    except UnicodeError as exc:
        log.warning("request to %r refused (400): %r at %s", request.path, exc, _where(exc))
        return web.json_response({"error": "malformed request"}, status=400)
    except Exception as exc:
        log.error("request to %r failed (500): %r at %s", request.path, exc, _where(exc))
        return web.json_response({"error": "internal error"}, status=500)


def _where(exc: BaseException) -> str:
    """The innermost frames of the exception's traceback, innermost first, on one line."""
    frames = traceback.extract_tb(exc.__traceback__)[-_FRAMES_LOGGED:]
    return " < ".join(f"{frame.filename}:{frame.lineno} {frame.name}" for frame in reversed(frames))


def _transport_checks(request: web.Request, max_body_bytes: int) -> tuple[int, str]:
    if request.content_type != "application/json":
        raise CallbackRejected(415, "content type must be application/json")
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise CallbackRejected(413, "body too large")
    job_id = parse_job_id(request.query.get("job", ""))
    token = request.query.get("token", "")
    # The bot's tokens are URL-safe ASCII; anything else cannot match one.
    if job_id is None or not token or not token.isascii():
        raise CallbackRejected(400, "callback URL lacks a valid job id and token")
    return job_id, token
