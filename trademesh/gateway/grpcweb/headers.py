"""Which headers cross the gateway, and the CORS answers for browsers on other origins.

Only named request headers become upstream metadata: a browser's cookies, its own
Authorization (replaced by the mesh token) and anything else stay at the gateway.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.access.contracts import TARGET_HEADER
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["Cors", "forwarded_request_metadata", "forwarded_response_metadata"]

# Passed from the browser to the upstream service as call metadata (W3C trace context: the
# service's log lines carry the call's trace id, trademesh.core.platform.rpc.edge).
_REQUEST_ALLOWED = frozenset({"x-request-id", "x-user-agent", "traceparent", "tracestate"})
# Passed from the upstream's metadata to the browser (headers or trailers).
_RESPONSE_ALLOWED = frozenset({"x-request-id"})

_ALLOW_HEADERS = ", ".join(
    [
        "authorization",
        "content-type",
        "grpc-timeout",
        "x-grpc-web",
        "x-user-agent",
        "x-request-id",
        "traceparent",
        "tracestate",
        TARGET_HEADER,
    ]
)
# What gRPC allows in an ASCII metadata value (printable ASCII, space to tilde), and a length
# that fits any request id or user agent: a header outside it is refused, never forwarded (grpc
# would reject it mid-call) and never echoed.
_METADATA_VALUE = re.compile(r"[\x20-\x7e]{0,256}")
_EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id"
_PREFLIGHT_MAX_AGE_S = 600


def forwarded_request_metadata(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The allowed headers, as call metadata; InvalidArgument naming a header whose value gRPC
    metadata cannot carry (non-ASCII bytes, control characters, longer than 256 characters)."""
    forwarded = []
    for name, value in headers:
        if name not in _REQUEST_ALLOWED:
            continue
        if _METADATA_VALUE.fullmatch(value) is None:
            raise InvalidArgument.field(name, "must be printable ASCII (0x20-0x7E), at most 256 characters")
        forwarded.append((name, value))
    return forwarded


def forwarded_response_metadata(metadata: Sequence[tuple[str, Any]] | None) -> list[tuple[str, str]]:
    return [
        (key, value) for key, value in metadata or () if key in _RESPONSE_ALLOWED and isinstance(value, str)
    ]


@dataclass(frozen=True)
class Cors:
    """Origins allowed to call from a browser page; empty allows every origin.

    Allowing every origin is safe here: the gateway takes bearer tokens only, never cookies,
    so a foreign page cannot call with a user's credentials unless it holds them.
    """

    origins: frozenset[str] = frozenset()

    def allows(self, origin: str) -> bool:
        return not self.origins or origin in self.origins

    def response_headers(self, origin: str | None) -> list[tuple[str, str]]:
        if origin is None or not self.allows(origin):
            return []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-expose-headers", _EXPOSE_HEADERS),
            ("vary", "origin"),
        ]

    def preflight_headers(self, origin: str | None) -> list[tuple[str, str]]:
        if origin is None or not self.allows(origin):
            return []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", "POST, OPTIONS"),
            ("access-control-allow-headers", _ALLOW_HEADERS),
            ("access-control-expose-headers", _EXPOSE_HEADERS),
            ("access-control-max-age", str(_PREFLIGHT_MAX_AGE_S)),
            ("vary", "origin"),
        ]
