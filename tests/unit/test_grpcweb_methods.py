"""The bridge's view of a method's shape comes from the contracts, by exact name only."""

from __future__ import annotations

import pytest

from trademesh.gateway.grpcweb.methods import MethodKind, method_kind


def test_known_methods_have_their_kind() -> None:
    assert method_kind("grpc.health.v1.Health", "Check") is MethodKind.UNARY
    assert method_kind("trademesh.mux.v1.Mux", "Open") is MethodKind.SERVER_STREAM


@pytest.mark.parametrize(
    ("service", "method"),
    [
        # The descriptor pool's lookups stop at a NUL byte: these once counted as Check.
        ("grpc.health.v1.Health", "Check\x00"),
        ("grpc.health.v1.Health", "Check\x00junk"),
        ("grpc.health.v1.Health\x00x", "Check"),
        ("grpc.health.v1.Health", "check"),
        ("grpc.health.v1", "Health"),
        ("no.such.Service", "Check"),
        ("", ""),
    ],
)
def test_a_name_that_is_not_exactly_a_contracts_method_has_no_kind(service: str, method: str) -> None:
    assert method_kind(service, method) is None
