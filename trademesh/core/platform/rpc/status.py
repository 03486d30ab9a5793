"""trademesh errors and gRPC statuses, both ways, in one place.

At the server edge (`to_status`): InvalidArgument carries google.rpc.BadRequest field
violations in the status details (grpc-status-details-bin), so grpcurl, buf curl and our
clients can show which field was wrong and why. At the client (`from_call_error`, `unavailable`):
a failed call becomes the project's error naming who answered so (`calling` around the call,
the one way: a caller's own reading of some codes passed as `refusals`); a caller that retries
instead says the failure as `call_failure` words it, and `REFUSED_AS_ASKED` are the codes no
retry of the same subscription mends. A server that lacks what a method needs (a capability
its Admin GetStatus says) ends the call with `abort_unimplemented`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from trademesh.core.platform import errors

__all__ = [
    "REFUSED_AS_ASKED", "abort_unimplemented", "bad_request_violations", "call_failure", "calling",
    "code_for", "from_call_error", "precondition_violations", "to_status", "unavailable",
]  # fmt: skip

# A status detail's message type (google.rpc.BadRequest, PreconditionFailure...).
_Detail = TypeVar("_Detail", bound=Message)

_CODES: list[tuple[type[errors.TrademeshError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Corrupt, grpc.StatusCode.DATA_LOSS),
]


def code_for(error: errors.TrademeshError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


# Whatever the request held, an answer's trailers stay small (grpc refuses trailers of more
# than 8-16 KB, and the client would see RESOURCE_EXHAUSTED instead of our status).
MAX_VIOLATIONS = 10
MAX_TEXT_CHARS = 256
MAX_MESSAGE_CHARS = 1024


def to_status(error: errors.TrademeshError) -> grpc.Status:
    code = code_for(error)
    status = status_pb2.Status(code=code.value[0])
    if isinstance(error, errors.InvalidArgument):
        violations = _bounded(error.violations)
        status.message = _cut("; ".join(f"{v.field}: {v.description}" for v in violations), MAX_MESSAGE_CHARS)
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in violations
                ]
            )
        )
        status.details.append(detail)
    else:
        status.message = _cut(str(error), MAX_MESSAGE_CHARS)
    if isinstance(error, errors.FailedPrecondition) and error.violations:
        status.details.append(_precondition_failure(error.violations))
    result: grpc.Status = rpc_status.to_status(status)
    return result


def _precondition_failure(violations: list[errors.FieldViolation]) -> any_pb2.Any:
    """What is not ready, as google.rpc.PreconditionFailure: subject the field, type FAILED."""
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="FAILED", subject=v.field, description=v.description
                )
                for v in _bounded(violations)
            ]
        )
    )
    return detail


def _bounded(violations: list[errors.FieldViolation]) -> list[errors.FieldViolation]:
    """At most MAX_VIOLATIONS, each cut to MAX_TEXT_CHARS, and a last one saying how many more."""
    shown = [
        errors.FieldViolation(_cut(v.field, MAX_TEXT_CHARS), _cut(v.description, MAX_TEXT_CHARS))
        for v in violations[:MAX_VIOLATIONS]
    ]
    if len(violations) > MAX_VIOLATIONS:
        shown.append(errors.FieldViolation("(more)", f"{len(violations) - MAX_VIOLATIONS} more violations"))
    return shown


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 40]}... ({len(text)} characters)"


def bad_request_violations(call_error: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (field, description) pairs of an INVALID_ARGUMENT answer."""
    requests = _details(call_error, code_pb2.INVALID_ARGUMENT, error_details_pb2.BadRequest)
    return [(v.field, v.description) for request in requests for v in request.field_violations]


def precondition_violations(call_error: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (subject, description) pairs of a FAILED_PRECONDITION answer."""
    failures = _details(call_error, code_pb2.FAILED_PRECONDITION, error_details_pb2.PreconditionFailure)
    return [(v.subject, v.description) for failure in failures for v in failure.violations]


def _details(call_error: grpc.RpcError, code: int, kind: type[_Detail]) -> list[_Detail]:
    """The status details of type `kind` of an answer with status `code` (none of another)."""
    status = rpc_status.from_call(call_error)
    if status is None or status.code != code:
        return []
    found: list[_Detail] = []
    for detail in status.details:
        message = kind()
        if detail.Unpack(message):
            found.append(message)
    return found


def from_call_error(exc: grpc.aio.AioRpcError, who: str, timeout_s: float) -> errors.TrademeshError:
    """A failed call as the project's error, naming `who` (the service or instance called): a
    bad request keeps its field violations; a refused mesh token is the operator's to fix (the
    caller's key was not the one refused); anything else is `who` being unavailable."""
    code = exc.code()
    details = exc.details() or code.name
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = [errors.FieldViolation(field, why) for field, why in bad_request_violations(exc)]
        return errors.InvalidArgument(violations or errors.FieldViolation("request", details))
    if code == grpc.StatusCode.NOT_FOUND:
        return errors.NotFound(f"{who}: {details}")
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return errors.FailedPrecondition(f"{who}: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return errors.ResourceExhausted(f"{who}: {details}")
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return errors.FailedPrecondition(f"{who} refused the gateway's mesh token: check TRADEMESH_TOKEN")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return errors.Unavailable(f"{who} is unavailable: no answer within {timeout_s:g} s")
    return errors.Unavailable(f"{who} is unavailable: {details}")


# A refusal of a whole subscription (a Subscribe stream's request): asked again unchanged, it
# would be refused again, so a follower waits for its request to change instead of retrying.
REFUSED_AS_ASKED = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)


def call_failure(exc: grpc.aio.AioRpcError) -> str:
    """A failed call as a log line or a reason says it: its code and details
    (`UNAVAILABLE: Socket closed`)."""
    return f"{exc.code().name}: {exc.details()}"


def unavailable(exc: grpc.aio.AioRpcError, who: str) -> errors.Unavailable:
    """A failed call to something a service cannot go on without (a venue's instruments, its
    candles, a health check), whatever the code: Unavailable naming `who`, the code and details."""
    return errors.Unavailable(f"{who}: {call_failure(exc)}")


# A caller's own reading of a code: the exception a failed call with it becomes.
Refusal = Callable[[grpc.aio.AioRpcError], Exception]


@contextlib.contextmanager
def calling(
    who: str, timeout_s: float | None = None, refusals: Mapping[grpc.StatusCode, Refusal] | None = None
) -> Iterator[None]:
    """Around a call to another service: its failure raised as the project's error naming `who`.
    A code in `refusals` becomes what its entry makes of the call error; otherwise, with
    `timeout_s` (the call's deadline), as `from_call_error` reads each code, and without it,
    Unavailable whatever the code (`unavailable`)."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        refusal = (refusals or {}).get(exc.code())
        if refusal is not None:
            raise refusal(exc) from exc
        raise (unavailable(exc, who) if timeout_s is None else from_call_error(exc, who, timeout_s)) from exc


async def abort_unimplemented(
    context: grpc.aio.ServicerContext[Any, Any], who: str, lacks: str, capability: str
) -> NoReturn:
    """Ends the call UNIMPLEMENTED: `who` lacks what the method needs, and the capability of its
    Admin GetStatus that tells a client so beforehand."""
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED, f"{who} {lacks} (Admin GetStatus: capabilities.{capability})"
    )
