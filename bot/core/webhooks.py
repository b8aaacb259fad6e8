"""Callback signatures: Replicate's (the Standard Webhooks scheme, over the raw body) and
KIE's (over task id and timestamp only).

Pure functions, so they run before anything trusts a callback and tests can feed them the
published vectors (providers.md §1.6, §3.4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from bot.core.errors import CallbackRejected

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Replicate documents no tolerance; 300 s is the Standard Webhooks convention (providers.md §1.6).
DEFAULT_TOLERANCE_SECONDS = 300


def signing_key(secret: str) -> bytes:
    """Key bytes for a ``whsec_<base64>`` secret: base64-decode the part after ``whsec_``."""
    prefix, _, encoded = secret.partition("_")
    if prefix != "whsec" or not encoded:
        raise ValueError("webhook secret must look like whsec_<base64>")
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64 after whsec_") from exc


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify_signature(
    key: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_seconds: float | None = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Return the webhook id of a genuine delivery; raise CallbackRejected otherwise.

    ``headers`` must be case-insensitive (aiohttp's are). Missing headers are a malformed
    request (400); a stale timestamp or a wrong signature is unauthenticated (401).
    """
    missing = [name for name in SIGNATURE_HEADERS if not headers.get(name)]
    if missing:
        raise CallbackRejected(400, f"missing headers: {', '.join(missing)}")
    webhook_id = _ascii(headers["webhook-id"], "webhook-id")
    timestamp = _timestamp(headers["webhook-timestamp"], "webhook-timestamp")
    if tolerance_seconds is not None and abs(now - timestamp) > tolerance_seconds:
        raise CallbackRejected(401, "webhook timestamp outside tolerance")
    expected = sign(key, webhook_id, timestamp, body).encode()
    for entry in _ascii(headers["webhook-signature"], "webhook-signature").split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return webhook_id
    raise CallbackRejected(401, "webhook signature does not match")


def _ascii(value: str, name: str) -> str:
    """Ids and signatures are ASCII in both schemes. Header bytes that are not UTF-8 arrive
    as lone surrogates (aiohttp decodes with surrogateescape), which ``str.encode`` refuses:
    refused here instead, before anything is hashed or compared."""
    if not value.isascii():
        raise CallbackRejected(400, f"{name} is not ASCII")
    return value


def _timestamp(value: str, header: str) -> int:
    """Unix seconds as ASCII digits; at most 12 of them, so the number stays a float (a
    300-digit one would overflow the comparison with the clock)."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise CallbackRejected(400, f"{header} is not a Unix time in seconds")
    return int(text)


TASK_SIGNATURE_HEADERS = ("X-Webhook-Timestamp", "X-Webhook-Signature")


def sign_task(key: str, task_id: str, timestamp: int) -> str:
    """KIE: base64 HMAC-SHA256 of ``"{taskId}.{timestamp}"`` with the key's UTF-8 bytes."""
    message = f"{task_id}.{timestamp}".encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def verify_task_signature(
    key: str,
    task_id: str,
    headers: Mapping[str, str],
    *,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise CallbackRejected unless the KIE-style signature headers are genuine.

    KIE gives no replay window; the same 300 s as Replicate's is assumed (providers.md §3.4).
    """
    missing = [name for name in TASK_SIGNATURE_HEADERS if not headers.get(name)]
    if missing:
        raise CallbackRejected(400, f"missing headers: {', '.join(missing)}")
    task_id = _ascii(task_id, "taskId")
    timestamp = _timestamp(headers["X-Webhook-Timestamp"], "X-Webhook-Timestamp")
    if abs(now - timestamp) > tolerance_seconds:
        raise CallbackRejected(401, "webhook timestamp outside tolerance")
    expected = sign_task(key, task_id, timestamp).encode()
    signature = _ascii(headers["X-Webhook-Signature"], "X-Webhook-Signature")
    if not hmac.compare_digest(signature.encode(), expected):
        raise CallbackRejected(401, "webhook signature does not match")
