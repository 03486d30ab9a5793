"""Studio session tokens: what a signer issues it accepts until expiry, and nothing else."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trademesh.core.platform.errors import FailedPrecondition, Unauthenticated
from trademesh.gateway.auth.sessions import SESSION_PREFIX, SessionSigner
from trademesh.gateway.auth.throttle import LoginThrottle

SECRET = b"s" * 32
NOW_MS = 1_700_000_000_000


def issue(signer: SessionSigner, ttl_s: float = 60.0) -> str:
    token, _ = signer.issue(7, "studio", ttl_s, NOW_MS)
    return token


def refused(signer: SessionSigner, token: str, now_ms: int = NOW_MS) -> str:
    with pytest.raises(Unauthenticated) as caught:
        signer.verify(token, now_ms)
    return str(caught.value)


def test_an_issued_token_verifies_to_its_key_and_expiry() -> None:
    signer = SessionSigner(SECRET)
    token, issued = signer.issue(7, "studio", 60.0, NOW_MS)
    assert token.startswith(SESSION_PREFIX)
    session = signer.verify(token, NOW_MS + 59_999)
    assert (session.key_id, session.key_name, session.expires_at_ms) == (7, "studio", NOW_MS + 60_000)
    assert session == issued


def test_a_token_is_refused_from_its_expiry_on() -> None:
    signer = SessionSigner(SECRET)
    token = issue(signer, ttl_s=60.0)
    assert refused(signer, token, NOW_MS + 60_000) == "session expired: log in again"


def test_two_tokens_for_the_same_key_and_time_differ() -> None:
    signer = SessionSigner(SECRET)
    assert issue(signer) != issue(signer)


def test_a_token_survives_a_restart_with_the_same_configured_secret() -> None:
    token = issue(SessionSigner(SECRET))
    assert SessionSigner(bytes(SECRET)).verify(token, NOW_MS).key_name == "studio"


def test_another_secret_or_a_per_process_secret_refuses_the_token() -> None:
    assert "invalid session token" in refused(SessionSigner(b"t" * 32), issue(SessionSigner(SECRET)))
    assert "invalid session token" in refused(SessionSigner(None), issue(SessionSigner(None)))


def test_a_payload_changed_to_extend_the_expiry_is_refused() -> None:
    signer = SessionSigner(SECRET)
    payload, mac = issue(signer)[len(SESSION_PREFIX) :].split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["e"] += 10**9
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    assert refused(signer, f"{SESSION_PREFIX}{forged}.{mac}") == "invalid session token: log in again"


# Not the last character: its low bits are base64 padding, which decoding ignores.
@pytest.mark.parametrize("position", [0, 10, -10, -3])
def test_a_token_with_one_character_changed_is_refused(position: int) -> None:
    signer = SessionSigner(SECRET)
    token = issue(signer)
    index = position % len(token) if position < 0 else len(SESSION_PREFIX) + position
    changed = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
    assert "invalid session token" in refused(signer, changed)


@pytest.mark.parametrize(
    "token", ["", "tms_", "tms_.", "tms_abc", "tms_abc.def", "tmk_abc.def", "tms_é.ü", "tms_" + "A" * 5000]
)
def test_malformed_tokens_are_refused_without_being_echoed(token: str) -> None:
    message = refused(SessionSigner(SECRET), token)
    assert message == "invalid session token: log in again"


@given(st.text(max_size=300))
def test_no_arbitrary_text_verifies(text: str) -> None:
    signer = SessionSigner(SECRET)
    with pytest.raises(Unauthenticated):
        signer.verify(SESSION_PREFIX + text, NOW_MS)


def test_a_configured_secret_shorter_than_32_bytes_is_refused_without_showing_it() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        SessionSigner(b"short-secret")
    assert "TRADEMESH_SESSION_SECRET is 12 bytes" in str(caught.value)
    assert "short-secret" not in str(caught.value)


def test_login_throttle_blocks_an_address_past_its_failures_until_the_window_moves() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60.0)
    for second in (0.0, 1.0, 2.0):
        assert throttle.retry_after_s("10.0.0.1", second) is None
        throttle.failed("10.0.0.1", second)
    assert throttle.retry_after_s("10.0.0.1", 2.5) == 58
    assert throttle.retry_after_s("10.0.0.2", 2.5) is None  # other addresses are not affected
    assert throttle.retry_after_s("10.0.0.1", 60.0) is None  # the first failure left the window


def test_login_throttle_forgets_the_least_recent_address_past_its_bound() -> None:
    throttle = LoginThrottle(max_failures=1, window_s=60.0, max_clients=2)
    for client in ("a", "b", "c"):
        throttle.failed(client, 0.0)
    assert throttle.retry_after_s("a", 1.0) is None
    assert throttle.retry_after_s("c", 1.0) == 59
