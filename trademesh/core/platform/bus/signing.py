"""Who wrote an entry of a trading stream: each writer signs what it writes, the reader checks.

The trading streams are order entry: the inspector trades what `intents.{signals}` carries and
carries out what `position_requests.{signals}` asks. Reaching Redis must not be enough to trade
(issue 56), so each of these streams has one writer allowed (`WRITERS`: the advisor writes the
intents, the detector the position requests), and that writer signs every entry it writes with a
key of its own (`SIGNING_KEYS`, from the environment): HMAC-SHA256 over the stream's name, the
writer's name and the entry's exact envelope bytes (field "d"), in two more fields of the entry
beside "d": `w` (the writer's name) and `s` (the signature, hex). The reader (the inspector) holds
the writers' keys and acts on an entry only when it is signed by the writer allowed on its stream
(`Verifier.check`); anything else is refused, not acted on.

The stream's name is signed too: an entry copied onto another stream does not verify there. An
entry copied onto the same stream (a replay of an intent the advisor wrote) verifies; the
inspector's journal knows each intent it handled, so it places none twice.

Every other reader of these streams (the recorder, replays, the ledger's attribution) reads "d"
alone and ignores the two fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from trademesh.core.platform.bus.append import Append, Field
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.names import INTENTS, POSITION_REQUESTS
from trademesh.core.platform.config.env import ADVISOR_SIGNING_KEY, DETECTOR_SIGNING_KEY, read_secret
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "ADVISOR",
    "DETECTOR",
    "SIGNATURE_FIELD",
    "SIGNING_KEYS",
    "WRITERS",
    "WRITER_FIELD",
    "EntryRefusal",
    "Signer",
    "Verifier",
    "signature",
    "signer_from_env",
    "verifier_from_env",
]

log = logging.getLogger(__name__)

# The entry's fields beside "d" (short: they are stored in every entry).
WRITER_FIELD = b"w"
SIGNATURE_FIELD = b"s"

ADVISOR = "advisor"
DETECTOR = "detector"
# Each trading stream and the one writer allowed on it.
WRITERS: Mapping[str, str] = {INTENTS: ADVISOR, POSITION_REQUESTS: DETECTOR}
# Each writer's key: the variable that holds it.
SIGNING_KEYS: Mapping[str, str] = {ADVISOR: ADVISOR_SIGNING_KEY, DETECTOR: DETECTOR_SIGNING_KEY}
# A key shorter than this is guessable offline from one signed entry: refused at start.
MIN_KEY_CHARS = 32
# Separates the signed parts (neither a stream's name nor a writer's name holds it).
_DOMAIN = b"trademesh.bus.signed.v1"


class EntryRefusal(Enum):
    """Why an entry of a trading stream is not acted on (the metric's `reason` label)."""

    UNSIGNED = "unsigned"  # no writer or no signature
    WRITER = "writer"  # signed as a writer not allowed on this stream
    NO_KEY = "no_key"  # the reader holds no key of the stream's writer
    SIGNATURE = "signature"  # the signature is not the writer's key's


def signature(key: bytes, stream: str, writer: str, data: bytes) -> str:
    """HMAC-SHA256 (hex) of the stream's name, the writer's name and the envelope's bytes."""
    message = b"\n".join((_DOMAIN, stream.encode(), writer.encode(), data))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Signer:
    """A writer's name and key (never shown: repr leaves it out)."""

    writer: str
    key: bytes = field(repr=False)

    def fields(self, stream: str, data: bytes) -> tuple[tuple[bytes, Field], ...]:
        """The fields that sign `data` (an entry's "d") as written to `stream` by this writer."""
        signed = signature(self.key, stream, self.writer, data)
        return ((WRITER_FIELD, self.writer), (SIGNATURE_FIELD, signed))

    def sign(self, append: Append) -> Append:
        """`append` with its signature's fields."""
        return dataclasses.replace(append, extra=(*append.extra, *self.fields(append.stream, append.data)))


@dataclass(frozen=True)
class Verifier:
    """The keys a reader holds, by writer; which writer each stream takes."""

    keys: Mapping[str, bytes] = field(repr=False)
    writers: Mapping[str, str] = field(default_factory=lambda: dict(WRITERS))

    def check(self, stream: str, fields: Mapping[bytes, bytes]) -> EntryRefusal | None:
        """Why the entry `fields` of `stream` is refused; None when its allowed writer signed it
        (or `stream` is no trading stream: nothing to check)."""
        allowed = self.writers.get(stream)
        if allowed is None:
            return None
        writer, signed = fields.get(WRITER_FIELD), fields.get(SIGNATURE_FIELD)
        if writer is None or signed is None:
            return EntryRefusal.UNSIGNED
        if not hmac.compare_digest(writer, allowed.encode()):
            return EntryRefusal.WRITER
        key = self.keys.get(allowed)
        if key is None:
            return EntryRefusal.NO_KEY
        expected = signature(key, stream, allowed, fields.get(FIELD, b""))
        return None if hmac.compare_digest(signed, expected.encode()) else EntryRefusal.SIGNATURE

    def missing(self) -> list[str]:
        """The variables of the writers' keys this reader lacks (their entries are all refused)."""
        return [SIGNING_KEYS[w] for w in sorted(set(self.writers.values())) if w not in self.keys]


def _key(variable: str) -> bytes | None:
    """The key in `variable`; None when unset; InvalidArgument naming the variable (never its
    value) when too short to be a key."""
    value = read_secret(variable)
    if value is None:
        return None
    if len(value) < MIN_KEY_CHARS:
        raise InvalidArgument.field(variable, f"is shorter than {MIN_KEY_CHARS} characters: not a key")
    return value.encode()


def signer_from_env(writer: str) -> Signer | None:
    """`writer`'s signer from its key's variable; None (said loudly: its entries will be refused)
    when the variable is unset."""
    variable = SIGNING_KEYS[writer]
    key = _key(variable)
    if key is None:
        log.warning(
            "%s: %s is unset: what it writes to the trading streams goes unsigned, and the "
            "inspector refuses it (docs/bus.md, 'Who may write the trading streams')",
            writer,
            variable,
        )
        return None
    return Signer(writer, key)


def verifier_from_env() -> Verifier:
    """A verifier with the writers' keys set in the environment."""
    keys = {writer: key for writer, variable in SIGNING_KEYS.items() if (key := _key(variable)) is not None}
    return Verifier(keys)
