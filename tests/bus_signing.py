"""The test keys that sign the trading streams (trademesh.core.platform.bus.signing), and the fields a
test writes to sign an entry it puts straight on the bus, as the advisor and the detector do.

tests/conftest.py puts both keys in the suite's environment, so every process a test starts has
them; a harness that gives each service only the secrets its command holds (as `trademesh up`
does) gives them with `held_keys`."""

from __future__ import annotations

from collections.abc import Collection

from redis.typing import EncodableT, FieldT

from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.signing import ADVISOR, DETECTOR, WRITERS, Signer
from trademesh.core.platform.config.env import ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY

__all__ = [
    "SIGNING_ENV",
    "TEST_ADVISOR_SIGNING_KEY",
    "TEST_DETECTOR_SIGNING_KEY",
    "entry_fields",
    "held_keys",
    "signed",
    "signed_by",
    "signer",
]

TEST_ADVISOR_SIGNING_KEY = "test-advisor-signing-key-0123456789abcdef"
TEST_DETECTOR_SIGNING_KEY = "test-detector-signing-key-0123456789abcdef"
SIGNING_ENV = {ADVISOR_SIGNING_KEY: TEST_ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY: TEST_DETECTOR_SIGNING_KEY}
_KEYS = {ADVISOR: TEST_ADVISOR_SIGNING_KEY, DETECTOR: TEST_DETECTOR_SIGNING_KEY}


def signer(writer: str) -> Signer:
    """`writer`'s signer with its test key."""
    return Signer(writer, _KEYS[writer].encode())


def signed(stream: str, data: bytes, writer: str | None = None) -> dict[FieldT, EncodableT]:
    """An entry's fields for `stream`: `data` in "d", signed by `writer` with its test key
    (default: the writer allowed on `stream`, as the advisor signs its intents and the detector
    its requests)."""
    return signed_by(signer(writer or WRITERS[stream]), stream, data)


def entry_fields(stream: str, data: bytes) -> dict[FieldT, EncodableT]:
    """An entry's fields for any stream: signed by its allowed writer on a trading stream, `data`
    alone in "d" on any other."""
    return signed(stream, data) if stream in WRITERS else {FIELD: data}


def signed_by(by: Signer, stream: str, data: bytes) -> dict[FieldT, EncodableT]:
    """An entry's fields for `stream`: `data` in "d", signed by `by` (a key of a test's own)."""
    return {FIELD: data, **{name: str(value) for name, value in by.fields(stream, data)}}


def held_keys(held: Collection[str]) -> dict[str, str]:
    """The signing keys for a service holding the variables `held`: its own set, the others empty
    (an empty variable reads as unset), as `trademesh up` gives them."""
    return {name: value if name in held else "" for name, value in SIGNING_ENV.items()}
