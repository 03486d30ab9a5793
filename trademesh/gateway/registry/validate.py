"""Checks of Registry requests: every bad field named, with what was wrong."""

from __future__ import annotations

import re

from trademesh.core.platform.bus.names import venue_name
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["check_instance_id", "check_register", "parse_address"]

_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")
_SERVICE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_HOST = re.compile(r"[A-Za-z0-9_.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_WILDCARDS = frozenset({"0.0.0.0", "[::]", "[0:0:0:0:0:0:0:0]"})
_MAX_SERVICES = 64
_MAX_PORT = 65535
# A release ("0.1.0", "1.2.0rc1+local"): what Python's packaging allows, and short.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+!-]{0,63}")


def check_register(request: pb.RegisterRequest) -> None:
    violations = _name(request.name, request.kind) + _kind(request.kind) + _address(request.address)
    violations += _services(list(request.services)) + _metrics_port(request.metrics_port)
    violations += _version(request.version)
    if violations:
        raise InvalidArgument(violations)


def check_instance_id(instance_id: str) -> None:
    if not instance_id:
        raise InvalidArgument.field("instance_id", "must not be empty (it is the one Register returned)")


def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of "host:port" / "[v6]:port"; None when it is not one."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not _HOST.fullmatch(host) or not port_text.isdigit():
        return None
    port = int(port_text)
    return (host, port) if 0 < port < 65536 else None


def _name(name: str, kind: int) -> list[FieldViolation]:
    if _NAME.fullmatch(name):
        return _venue(name) if kind == pb.KIND_VENUE else []
    shown = repr(name) if name else "empty"
    return [
        FieldViolation(
            "name", f"{shown} is not 1-63 of a-z 0-9 _ . - starting with a letter or digit (e.g. sim)"
        )
    ]


def _venue(name: str) -> list[FieldViolation]:
    """A venue's name is also the bus's (its streams, the recorder's rows): one the bus refuses
    would be listed and then followed by nobody (ingest skips it), without a word to its venue."""
    try:
        venue_name(name)
    except InvalidArgument as exc:
        return [FieldViolation("name", exc.violations[0].description)]
    return []


def _kind(kind: int) -> list[FieldViolation]:
    if kind in pb.Kind.values() and kind not in (pb.KIND_UNSPECIFIED, pb.KIND_GATEWAY):
        return []
    known = ", ".join(n for n, v in pb.Kind.items() if v not in (pb.KIND_UNSPECIFIED, pb.KIND_GATEWAY))
    name = pb.Kind.Name(kind) if kind in pb.Kind.values() else str(kind)  # type: ignore[arg-type]
    return [FieldViolation("kind", f"{name} is not a kind an instance can register as ({known})")]


def _address(address: str) -> list[FieldViolation]:
    parsed = parse_address(address)
    if parsed is None:
        what = shown(address) if address else "empty"
        return [FieldViolation("address", f"{what} is not host:port with a port 1-65535")]
    if parsed[0] in _WILDCARDS:
        return [
            FieldViolation("address", f"{shown(address)} is a wildcard: send an address the gateway can dial")
        ]
    return []


def _metrics_port(port: int) -> list[FieldViolation]:
    if port <= _MAX_PORT:
        return []
    return [FieldViolation("metrics_port", f"{port} is not a port 1-65535 (0: no metrics)")]


def _version(version: str) -> list[FieldViolation]:
    if not version or _VERSION.fullmatch(version):
        return []
    return [
        FieldViolation("version", f"{shown(version)} is not a release of at most 64 of A-Z a-z 0-9 _ . + ! -")
    ]


def _services(services: list[str]) -> list[FieldViolation]:
    if len(services) > _MAX_SERVICES:
        return [FieldViolation("services", f"{len(services)} services; at most {_MAX_SERVICES}")]
    return [
        FieldViolation(f"services[{i}]", f"{shown(name)} is not a full gRPC service name (package.Service)")
        for i, name in enumerate(services)
        if not _SERVICE.fullmatch(name)
    ]
