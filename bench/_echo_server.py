"""A bare grpc.aio unary echo server on uvloop: no interceptors, no health, no application code.

bench/place_order.py runs it as a child process (mode "echo") to show what one round trip costs
grpc.aio itself on this machine, apart from anything trademesh adds. Prints one JSON line
`{"event": "serving", "port": N}` on stdout, then serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import grpc
import uvloop

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


def _identity(data: bytes) -> bytes:
    return data


async def _echo(request: bytes, context: Any) -> bytes:
    return request


async def serve() -> None:
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        _echo, request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(json.dumps({"event": "serving", "port": port}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


if __name__ == "__main__":
    uvloop.run(serve())
