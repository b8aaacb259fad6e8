from __future__ import annotations

import pytest
from multidict import CIMultiDict

from bot.core.errors import CallbackRejected
from bot.core.webhooks import sign, sign_task, signing_key, verify_signature, verify_task_signature

# The published test vector (providers.md §1.6, from replicate-javascript / svix).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(**overrides: str) -> CIMultiDict[str]:
    values = {
        "webhook-id": WEBHOOK_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }
    values.update({key.replace("_", "-"): value for key, value in overrides.items()})
    return CIMultiDict(values)


def test_published_vector_verifies() -> None:
    webhook_id = verify_signature(signing_key(SECRET), headers(), BODY, now=TIMESTAMP)
    assert webhook_id == WEBHOOK_ID


def test_any_of_several_signatures_may_match() -> None:
    several = f"v1,bm90LWl0 {SIGNATURE}"
    key = signing_key(SECRET)
    assert verify_signature(key, headers(webhook_signature=several), BODY, now=TIMESTAMP)


def test_changed_body_is_rejected() -> None:
    with pytest.raises(CallbackRejected) as caught:
        verify_signature(signing_key(SECRET), headers(), BODY + b" ", now=TIMESTAMP)
    assert caught.value.status == 401


def test_stale_timestamp_is_rejected_even_with_a_valid_signature() -> None:
    with pytest.raises(CallbackRejected, match="tolerance") as caught:
        verify_signature(signing_key(SECRET), headers(), BODY, now=TIMESTAMP + 301)
    assert caught.value.status == 401


def test_missing_header_is_a_malformed_request() -> None:
    incomplete = headers()
    del incomplete["webhook-signature"]
    with pytest.raises(CallbackRejected, match="webhook-signature") as caught:
        verify_signature(signing_key(SECRET), incomplete, BODY, now=TIMESTAMP)
    assert caught.value.status == 400


def test_signature_of_another_scheme_version_is_ignored() -> None:
    other_version = SIGNATURE.replace("v1,", "v2,")
    with pytest.raises(CallbackRejected):
        verify_signature(
            signing_key(SECRET), headers(webhook_signature=other_version), BODY, now=TIMESTAMP
        )


def test_sign_produces_the_published_signature() -> None:
    assert f"v1,{sign(signing_key(SECRET), WEBHOOK_ID, TIMESTAMP, BODY)}" == SIGNATURE


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!"])
def test_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="whsec"):
        signing_key(secret)


# What aiohttp makes of header bytes that are not UTF-8 (it decodes with surrogateescape).
NOT_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")


@pytest.mark.parametrize(
    "overrides",
    [
        {"webhook_id": NOT_UTF8},
        {"webhook_id": "msg_\u00e9"},
        {"webhook_signature": "v1," + NOT_UTF8},
        {"webhook_signature": "v1,\ud800"},
    ],
)
def test_an_id_or_signature_that_is_not_ascii_is_a_malformed_request(
    overrides: dict[str, str],
) -> None:
    with pytest.raises(CallbackRejected, match="not ASCII") as caught:
        verify_signature(signing_key(SECRET), headers(**overrides), BODY, now=TIMESTAMP)
    assert caught.value.status == 400


TASK_KEY = "kie-webhook-key"


def task_headers(signature: str) -> CIMultiDict[str]:
    return CIMultiDict({"X-Webhook-Timestamp": str(TIMESTAMP), "X-Webhook-Signature": signature})


def test_a_genuine_task_signature_verifies() -> None:
    genuine = sign_task(TASK_KEY, "task_a", TIMESTAMP)
    verify_task_signature(TASK_KEY, "task_a", task_headers(genuine), now=TIMESTAMP)


@pytest.mark.parametrize(
    ("task_id", "signature"),
    [("\ud800", "c2ln"), ("task_\u00e9", "c2ln"), ("task_a", NOT_UTF8), ("task_a", "\u00e9")],
)
def test_a_task_id_or_task_signature_that_is_not_ascii_is_a_malformed_request(
    task_id: str, signature: str
) -> None:
    with pytest.raises(CallbackRejected, match="not ASCII") as caught:
        verify_task_signature(TASK_KEY, task_id, task_headers(signature), now=TIMESTAMP)
    assert caught.value.status == 400
