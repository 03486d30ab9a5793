"""Request bodies, decoded by the edge after its checks; a malformed body is INVALID_ARGUMENT.

grpc would decode a request before any of our code runs: a malformed body became UNKNOWN
("Unexpected DecodeError") with a traceback in the log, and a large body was parsed before
its token was checked. The edge registers every unary-request handler with no deserializer
(grpc hands over the raw bytes) and decodes them itself once auth and the start gate passed.
Request streams (reflection) keep a deserializer, a lenient one: a bad message becomes
INVALID_ARGUMENT when the handler reads it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError, Message

from trademesh.core.platform.errors import FieldViolation, InvalidArgument
from trademesh.core.platform.rpc.limits import violations_of
from trademesh.core.platform.rpc.repeats import drop_repeats
from trademesh.core.platform.rpc.storable import unstorable_fields

__all__ = ["RequestDecoder"]

# What a malformed body raises in protobuf's parsers (C++ and upb raise DecodeError; a bad
# UTF-8 string in a proto3 field can surface as a ValueError or a UnicodeDecodeError).
_DECODE_ERRORS = (DecodeError, ValueError, UnicodeDecodeError, TypeError)


class _Malformed:
    """What the lenient deserializer hands over for a message it could not decode."""

    __slots__ = ()


_MALFORMED = _Malformed()


class RequestDecoder:
    """Decodes one method's requests with the generated parser grpc would have used."""

    def __init__(self, parse: Callable[[bytes], Any] | None) -> None:
        self._parse = parse
        owner = getattr(parse, "__self__", None)
        descriptor = getattr(owner, "DESCRIPTOR", None)
        self.type_name = getattr(descriptor, "full_name", "request")

    def __call__(self, raw: Any) -> Any:
        if self._parse is None or not isinstance(raw, bytes):
            return raw
        try:
            request = self._parse(raw)
        except _DECODE_ERRORS:
            raise self._error() from None
        _check_limits(request)
        return request

    def lenient(self, raw: bytes) -> Any:
        """A deserializer that never raises (for request streams): see checked()."""
        try:
            return raw if self._parse is None else self._parse(raw)
        except _DECODE_ERRORS:
            return _MALFORMED

    async def checked(self, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The stream's messages; INVALID_ARGUMENT at the first one that did not decode."""
        async for request in requests:
            if request is _MALFORMED:
                raise self._error()
            _check_limits(request)
            yield request

    def _error(self) -> InvalidArgument:
        return InvalidArgument(FieldViolation("(request body)", f"is not a valid {self.type_name} message"))


def _check_limits(request: Any) -> None:
    if isinstance(request, Message):
        found = violations_of(request) or unstorable_fields(request)
        if found:
            raise InvalidArgument(found)
        drop_repeats(request)  # a list's repeats asked for nothing more (trademesh.core.platform.rpc.repeats)
