from __future__ import annotations

import pytest
from multidict import CIMultiDict

from bot.core.errors import CallbackRejected
from bot.core.webhooks import sign, signing_key, verify_signature

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
