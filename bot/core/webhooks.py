"""Replicate webhook signatures (the Standard Webhooks scheme), verified on the raw body.

A pure function over bytes, so the listener can call it before any parsing and tests can
feed it the published test vector (providers.md §1.6).
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
    webhook_id = headers["webhook-id"]
    try:
        timestamp = int(headers["webhook-timestamp"])
    except ValueError:
        raise CallbackRejected(400, "webhook-timestamp is not an integer") from None
    if tolerance_seconds is not None and abs(now - timestamp) > tolerance_seconds:
        raise CallbackRejected(401, "webhook timestamp outside tolerance")
    expected = sign(key, webhook_id, timestamp, body).encode()
    for entry in headers["webhook-signature"].split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return webhook_id
    raise CallbackRejected(401, "webhook signature does not match")
