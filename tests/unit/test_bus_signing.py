"""trademesh.core.platform.bus.signing: a trading stream's entry verifies only when its allowed writer's
key signed those exact bytes on that stream; keys come from the environment, too short ones are
refused without being shown."""

from __future__ import annotations

import logging

import pytest

from trademesh.core.platform.bus.append import Append
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.names import INTENTS, POSITION_REQUESTS, RISK, SIGNALS
from trademesh.core.platform.bus.signing import (
    ADVISOR,
    DETECTOR,
    SIGNATURE_FIELD,
    WRITER_FIELD,
    EntryRefusal,
    Signer,
    Verifier,
    signer_from_env,
    verifier_from_env,
)
from trademesh.core.platform.config.env import ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY
from trademesh.core.platform.errors import InvalidArgument

ADVISOR_KEY = b"a" * 32
DETECTOR_KEY = b"d" * 32
BOTH = Verifier({ADVISOR: ADVISOR_KEY, DETECTOR: DETECTOR_KEY})
DATA = b"\x0a\x04test an envelope's bytes"


def _entry(stream: str, data: bytes = DATA, signer: Signer | None = None) -> dict[bytes, bytes]:
    """The entry as Redis gives it back: every field's value as bytes."""
    signer = signer or Signer(ADVISOR if stream == INTENTS else DETECTOR, ADVISOR_KEY)
    fields = {FIELD: data}
    for name, value in signer.fields(stream, data):
        fields[name] = str(value).encode()
    return fields


def test_each_stream_takes_its_own_writer_signed_with_its_own_key() -> None:
    assert BOTH.check(INTENTS, _entry(INTENTS, signer=Signer(ADVISOR, ADVISOR_KEY))) is None
    assert (
        BOTH.check(POSITION_REQUESTS, _entry(POSITION_REQUESTS, signer=Signer(DETECTOR, DETECTOR_KEY)))
        is None
    )


def test_unsigned_and_half_signed_entries_are_refused() -> None:
    assert BOTH.check(INTENTS, {FIELD: DATA}) is EntryRefusal.UNSIGNED
    signed = _entry(INTENTS)
    assert BOTH.check(INTENTS, {FIELD: DATA, WRITER_FIELD: signed[WRITER_FIELD]}) is EntryRefusal.UNSIGNED
    assert (
        BOTH.check(INTENTS, {FIELD: DATA, SIGNATURE_FIELD: signed[SIGNATURE_FIELD]}) is EntryRefusal.UNSIGNED
    )


def test_a_writer_not_allowed_on_the_stream_is_refused_even_with_its_own_good_key() -> None:
    # The advisor's key signing a position request, the detector's an intent: each is that
    # writer's genuine signature, on a stream it may not write.
    advisor_request = _entry(POSITION_REQUESTS, signer=Signer(ADVISOR, ADVISOR_KEY))
    detector_intent = _entry(INTENTS, signer=Signer(DETECTOR, DETECTOR_KEY))
    assert BOTH.check(POSITION_REQUESTS, advisor_request) is EntryRefusal.WRITER
    assert BOTH.check(INTENTS, detector_intent) is EntryRefusal.WRITER
    assert BOTH.check(INTENTS, _entry(INTENTS, signer=Signer("mallory", ADVISOR_KEY))) is EntryRefusal.WRITER


def test_a_claimed_writer_with_another_key_or_changed_bytes_is_refused() -> None:
    forged = _entry(INTENTS, signer=Signer(ADVISOR, b"x" * 32))
    assert BOTH.check(INTENTS, forged) is EntryRefusal.SIGNATURE
    tampered = {**_entry(INTENTS), FIELD: DATA + b"\x10\x01"}
    assert BOTH.check(INTENTS, tampered) is EntryRefusal.SIGNATURE
    garbage = {**_entry(INTENTS), SIGNATURE_FIELD: b"not hex at all"}
    assert BOTH.check(INTENTS, garbage) is EntryRefusal.SIGNATURE


def test_the_stream_is_signed_too_an_entry_copied_to_another_stream_does_not_verify() -> None:
    # Both streams allowing the advisor: only the stream's name tells the two signatures apart.
    lenient = Verifier({ADVISOR: ADVISOR_KEY}, {INTENTS: ADVISOR, POSITION_REQUESTS: ADVISOR})
    copied = _entry(INTENTS, signer=Signer(ADVISOR, ADVISOR_KEY))
    assert lenient.check(INTENTS, copied) is None
    assert lenient.check(POSITION_REQUESTS, copied) is EntryRefusal.SIGNATURE


def test_a_reader_without_a_writers_key_refuses_that_writers_entries() -> None:
    advisor_only = Verifier({ADVISOR: ADVISOR_KEY})
    assert advisor_only.check(INTENTS, _entry(INTENTS)) is None
    request = _entry(POSITION_REQUESTS, signer=Signer(DETECTOR, DETECTOR_KEY))
    assert advisor_only.check(POSITION_REQUESTS, request) is EntryRefusal.NO_KEY
    assert advisor_only.missing() == [DETECTOR_SIGNING_KEY]
    assert Verifier({}).missing() == [ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY]


def test_other_streams_are_not_checked() -> None:
    for stream in (SIGNALS, RISK, "md.{sim}.trades"):
        assert Verifier({}).check(stream, {FIELD: DATA}) is None


def test_sign_adds_the_fields_beside_the_ones_an_append_had() -> None:
    append = Append(INTENTS, DATA, 1000, extra=((b"x", b"1"),))
    fields = Signer(ADVISOR, ADVISOR_KEY).sign(append).fields()
    assert list(fields) == [FIELD, b"x", WRITER_FIELD, SIGNATURE_FIELD]
    as_read = {
        name: value if isinstance(value, bytes) else str(value).encode() for name, value in fields.items()
    }
    assert BOTH.check(INTENTS, as_read) is None


def test_the_key_never_shows_in_a_signers_repr() -> None:
    assert "secret" not in repr(Signer(ADVISOR, b"secret" * 6))


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(ADVISOR_SIGNING_KEY, "k" * 32)
    monkeypatch.setenv(DETECTOR_SIGNING_KEY, "")  # empty reads as unset
    verifier = verifier_from_env()
    assert dict(verifier.keys) == {ADVISOR: b"k" * 32}
    signer = signer_from_env(ADVISOR)
    assert signer is not None and signer.key == b"k" * 32
    with caplog.at_level(logging.WARNING):
        assert signer_from_env(DETECTOR) is None
    assert DETECTOR_SIGNING_KEY in caplog.text  # said loudly: its entries will be refused


def test_a_short_key_is_refused_naming_the_variable_and_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ADVISOR_SIGNING_KEY, "short-secret")
    with pytest.raises(InvalidArgument) as refused:
        verifier_from_env()
    assert ADVISOR_SIGNING_KEY in str(refused.value) and "short-secret" not in str(refused.value)
    with pytest.raises(InvalidArgument):
        signer_from_env(ADVISOR)
