"""What kind of call a method is (unary, server streaming, ...), from the compiled contracts.

The bridge forwards message bytes without decoding them, but it must know a method's shape:
gRPC-web has no client or bidi streaming, and a unary call is forwarded as one. The
descriptors come from the generated code of proto/ plus grpc's own health and reflection.
A method the gateway has no contract for is forwarded as a server stream, which carries a
unary answer just as well (one message, then the status).
"""

from __future__ import annotations

import enum
import functools
import importlib
from pathlib import Path

from google.protobuf import descriptor_pool

__all__ = ["MethodKind", "method_kind"]

# Modules whose import adds the descriptors of services the gateway may forward to.
_EXTRA_MODULES = ("grpc_health.v1.health_pb2", "grpc_reflection.v1alpha.reflection_pb2")


class MethodKind(enum.Enum):
    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    CLIENT_STREAM = "client_stream"
    BIDI_STREAM = "bidi_stream"


@functools.cache
def _load_contracts() -> None:
    """Every contract's descriptors into the default pool: the generated modules are found by
    their files (`trademesh/<area>/v1/*_pb2.py`), not by walking the packages, which imported
    each of trademesh's ~1,200 modules to list their children (1.3 CPU s, on the first call's path)."""
    import trademesh

    for root in trademesh.__path__:
        for path in sorted(Path(root).glob("*/v1/*_pb2.py")):
            importlib.import_module(f"trademesh.{path.parent.parent.name}.v1.{path.stem}")
    for name in _EXTRA_MODULES:
        importlib.import_module(name)


def method_kind(service: str, method: str) -> MethodKind | None:
    """The method's kind; None when the gateway has no contract for it.

    Names are compared exactly: the descriptor pool's lookups end a name at a NUL byte, so
    "Check\x00junk" (a path with %00) would otherwise count as Check, and the bridge would
    take that client-chosen name for a known method (a metric label of its own, and the
    shape of Check).
    """
    _load_contracts()
    try:
        found = descriptor_pool.Default().FindServiceByName(service).methods_by_name.get(method)
    except KeyError:
        return None
    if found is None or found.full_name != f"{service}.{method}":
        return None
    if found.client_streaming:
        return MethodKind.BIDI_STREAM if found.server_streaming else MethodKind.CLIENT_STREAM
    return MethodKind.SERVER_STREAM if found.server_streaming else MethodKind.UNARY
