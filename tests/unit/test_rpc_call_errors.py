"""A failed call becomes the project's error in one place (trademesh.core.platform.rpc.status): the inverse of
`to_status`, naming who answered so."""

from __future__ import annotations

import grpc
import pytest
from grpc.aio import AioRpcError, Metadata

from trademesh.core.platform import errors
from trademesh.core.platform.rpc.status import call_failure, from_call_error, to_status, unavailable


def _failed(code: grpc.StatusCode, details: str, trailing: Metadata | None = None) -> AioRpcError:
    return AioRpcError(code, Metadata(), trailing or Metadata(), details)


def test_a_bad_request_keeps_its_field_violations() -> None:
    sent = errors.InvalidArgument([errors.FieldViolation("size", "must be positive, got -1")])
    status = to_status(sent)
    call = _failed(grpc.StatusCode.INVALID_ARGUMENT, status.details, Metadata(*status.trailing_metadata))
    found = from_call_error(call, "venue sim", 5)
    assert isinstance(found, errors.InvalidArgument)
    assert [(v.field, v.description) for v in found.violations] == [("size", "must be positive, got -1")]


def test_a_bad_request_without_violations_names_the_request() -> None:
    found = from_call_error(_failed(grpc.StatusCode.INVALID_ARGUMENT, "no such thing"), "venue sim", 5)
    assert isinstance(found, errors.InvalidArgument)
    assert [(v.field, v.description) for v in found.violations] == [("request", "no such thing")]


@pytest.mark.parametrize(
    ("code", "kind", "text"),
    [
        (grpc.StatusCode.NOT_FOUND, errors.NotFound, "venue sim: no order 7"),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition, "venue sim: no order 7"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhausted, "venue sim: no order 7"),
        (grpc.StatusCode.UNAUTHENTICATED, errors.FailedPrecondition, "check TRADEMESH_TOKEN"),
        (grpc.StatusCode.PERMISSION_DENIED, errors.FailedPrecondition, "check TRADEMESH_TOKEN"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.Unavailable, "unavailable: no answer within 2.5 s"),
        (grpc.StatusCode.UNAVAILABLE, errors.Unavailable, "venue sim is unavailable: no order 7"),
        (grpc.StatusCode.INTERNAL, errors.Unavailable, "venue sim is unavailable: no order 7"),
    ],
)
def test_each_code_is_its_error_naming_who(code: grpc.StatusCode, kind: type, text: str) -> None:
    found = from_call_error(_failed(code, "no order 7"), "venue sim", 2.5)
    assert type(found) is kind
    assert text in str(found)


def test_unavailable_names_who_the_code_and_the_details_whatever_the_code() -> None:
    for code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE):
        found = unavailable(_failed(code, "connection refused"), "venue sim: ListInstruments")
        assert isinstance(found, errors.Unavailable)
        assert str(found) == f"venue sim: ListInstruments: {code.name}: connection refused"


def test_a_failed_call_is_said_one_way_its_code_and_details() -> None:
    failed = _failed(grpc.StatusCode.UNAVAILABLE, "Socket closed")
    assert call_failure(failed) == "UNAVAILABLE: Socket closed"
    assert str(unavailable(failed, "venue sim")) == f"venue sim: {call_failure(failed)}"
