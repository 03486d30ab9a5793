"""The type of a gRPC handler's context, by its request and response types.

`context: Context[md.GetCandlesRequest, md.GetCandlesResponse]`: handlers are typed by what
they take and answer, never `Any` (a stream of pre-encoded messages answers `bytes`).
"""

from __future__ import annotations

from typing import TypeAlias

import grpc

__all__ = ["Context"]

Context: TypeAlias = grpc.aio.ServicerContext
