"""The gRPC-web bridge: browsers' unary and server-streaming calls, forwarded over native gRPC."""

from __future__ import annotations

from trademesh.gateway.grpcweb.bridge import INTERNAL_METHODS, OPEN_SERVICES, GrpcWebBridge, GrpcWebOptions
from trademesh.gateway.grpcweb.headers import Cors

__all__ = ["INTERNAL_METHODS", "OPEN_SERVICES", "Cors", "GrpcWebBridge", "GrpcWebOptions"]
