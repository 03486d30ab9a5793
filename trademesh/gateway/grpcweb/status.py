"""A call's final status as gRPC-web sends it: grpc-status, grpc-message, grpc-status-details-bin."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.rpc.status import to_status

__all__ = ["DETAILS_HEADER", "CallRefused", "CallStatus", "percent_encode"]

DETAILS_HEADER = "grpc-status-details-bin"


def percent_encode(message: str) -> str:
    """grpc-message encoding: UTF-8, every byte outside printable ASCII (and '%') as %XX."""
    return "".join(
        chr(byte) if 0x20 <= byte <= 0x7E and byte != 0x25 else f"%{byte:02X}"
        for byte in message.encode("utf-8")
    )


@dataclass(frozen=True)
class CallStatus:
    code: grpc.StatusCode
    message: str = ""
    # A serialized google.rpc.Status (e.g. with BadRequest field violations), passed on as is.
    details: bytes | None = None

    @classmethod
    def ok(cls) -> CallStatus:
        return cls(grpc.StatusCode.OK)

    @classmethod
    def from_error(cls, error: TrademeshError) -> CallStatus:
        status = to_status(error)
        return cls(status.code, status.details, _details(status.trailing_metadata))

    @classmethod
    def from_metadata(
        cls, code: grpc.StatusCode, message: str, trailing: Sequence[tuple[str, Any]] | None
    ) -> CallStatus:
        return cls(code, message, _details(trailing))

    @property
    def name(self) -> str:
        return str(self.code.name)

    def trailers(self) -> list[tuple[str, str]]:
        found = [("grpc-status", str(self.code.value[0]))]
        if self.message:
            found.append(("grpc-message", percent_encode(self.message)))
        if self.details is not None:
            found.append((DETAILS_HEADER, base64.b64encode(self.details).decode("ascii")))
        return found


def _details(metadata: Sequence[tuple[str, Any]] | None) -> bytes | None:
    for key, value in metadata or ():
        if key == DETAILS_HEADER and isinstance(value, bytes):
            return value
    return None


class CallRefused(Exception):
    """A call refused with a status that no trademesh.core.platform.errors error maps to
    (PERMISSION_DENIED, ...)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.status = CallStatus(code, message)
