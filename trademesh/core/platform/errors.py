"""The one exception hierarchy of trademesh.

Errors from libraries are mapped into these where they enter our code
(``raise VenueUnavailable(...) from exc``); trademesh.core.platform.rpc.status maps these to gRPC
status codes at the server edge.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SHOWN_CHARS",
    "AlreadyExists",
    "Corrupt",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "TrademeshError",
    "Unauthenticated",
    "Unavailable",
    "shown",
]

# How much of a value from a request an error message repeats.
SHOWN_CHARS = 64


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """A value from a request as an error message quotes it: its first `limit` characters, and
    its length when it was longer (so no answer echoes a megabyte back)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path ("size", "subscriptions[0].symbol") and why."""

    field: str
    description: str


class TrademeshError(Exception):
    """Base of every error trademesh raises on purpose."""


class InvalidArgument(TrademeshError):
    """The request is malformed; the caller must change it."""

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        self.violations = [violations] if isinstance(violations, FieldViolation) else violations
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))

    def __reduce__(self) -> tuple[type[InvalidArgument], tuple[list[FieldViolation]]]:
        """Pickled with its violations (an error raised in a worker process comes back whole)."""
        return (type(self), (self.violations,))


class NotFound(TrademeshError):
    """The named thing (order, symbol, stream) does not exist."""


class AlreadyExists(TrademeshError):
    """The thing to create exists already."""


class FailedPrecondition(TrademeshError):
    """The request is well formed but the system's state refuses it (e.g. balance too low).

    `violations` name what is not ready, when there is a list of reasons (a patch that fails
    validation: each missing input); the edge sends them as google.rpc.PreconditionFailure."""

    def __init__(self, message: str, violations: list[FieldViolation] | None = None) -> None:
        self.violations = list(violations or [])
        super().__init__(message)


class ResourceExhausted(TrademeshError):
    """A limit was hit (a subscriber too slow for its queue, a rate limit)."""


class Unavailable(TrademeshError):
    """Temporarily unable to serve (draining, upstream venue down); retry later."""


class NotYet(Unavailable):
    """A bus entry refused for now, not for what it holds: its consumer waits for something else
    first (an earlier entry to be applied). The consumer runner leaves it pending and retries it; such
    a refusal never counts towards dead-lettering it (trademesh.core.platform.bus.consumer)."""


class DeadlineExceeded(Unavailable):
    """A dependency did not answer within its deadline (an LLM endpoint, a tool); retry later or
    elsewhere. A kind of Unavailable, so the edge answers UNAVAILABLE."""


class Unauthenticated(TrademeshError):
    """Missing or wrong credentials."""


class PermissionDenied(TrademeshError):
    """The caller is known but may not do this (e.g. an API key without the scope a method needs)."""


class Corrupt(TrademeshError):
    """Data read from a stream or a store that cannot be decoded (a poison message)."""
