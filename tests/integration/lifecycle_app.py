"""A tiny service run by trademesh.core.platform.service.lifecycle, for the lifecycle tests
(`python -m tests.integration.lifecycle_app`).

It serves trademesh.registry.v1.Registry (ListServices answers; the rest are not needed),
waits --start-delay-s before it is ready, prints what happens to it on stdout, and fails on
purpose when told to: `ours` (a TrademeshError) or `bug` (any other exception), before or
after it is ready.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import uvloop

from trademesh.core.platform.errors import TrademeshError, Unavailable
from trademesh.core.platform.logs.setup import setup_logging
from trademesh.core.platform.rpc.server import ServerOptions, Service
from trademesh.core.platform.service.lifecycle import ServiceContext, run_service
from trademesh.core.platform.service.registry import Kind, ServiceEntry
from trademesh.registry.v1 import registry_pb2 as pb
from trademesh.registry.v1 import registry_pb2_grpc as pb_grpc

ENTRY = ServiceEntry("lifecycle", "tests.integration.lifecycle_app", Kind.CORE, 0, "a test service")


def say(text: str) -> None:
    print(text, flush=True)


class _Registry(pb_grpc.RegistryServicer):
    async def ListServices(self, request: pb.ListServicesRequest, context: Any) -> pb.ListServicesResponse:
        return pb.ListServicesResponse()

    async def Register(self, request: pb.RegisterRequest, context: Any) -> pb.RegisterResponse:
        raise Unavailable("not here")

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Any) -> pb.HeartbeatResponse:
        raise Unavailable("not here")

    async def Unregister(self, request: pb.UnregisterRequest, context: Any) -> pb.UnregisterResponse:
        raise Unavailable("not here")


class LifecycleApp:
    name = "lifecycle"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def grpc_services(self) -> Sequence[Service]:
        return [Service(pb.DESCRIPTOR.services_by_name["Registry"].full_name, _Registry(),
                        pb_grpc.add_RegistryServicer_to_server)]  # fmt: skip

    async def run(self, ctx: ServiceContext) -> None:
        async def hook() -> None:
            say("stopping hook")

        ctx.on_stopping(hook)
        say(f"starting on port {ctx.port}")
        await asyncio.sleep(self.args.start_delay_s)
        self._maybe_fail("before")
        await ctx.ready()
        self._maybe_fail("after")
        await ctx.stop.wait()
        say("work stopped")

    def _maybe_fail(self, when: str) -> None:
        if self.args.fail_when != when:
            return
        if self.args.fail == "ours":
            raise TrademeshError(f"cannot start: failed {when} ready on purpose")
        if self.args.fail == "bug":
            raise RuntimeError(f"a bug {when} ready")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--start-delay-s", type=float, default=0.0)
    parser.add_argument("--fail", choices=["ours", "bug"])
    parser.add_argument("--fail-when", choices=["before", "after"], default="before")
    args = parser.parse_args(argv)
    setup_logging("lifecycle")
    options = ServerOptions(
        port=args.port, token="t", drain_delay_s=0.2, grace_s=2.0, service_label="lifecycle"
    )
    try:
        uvloop.run(run_service(ENTRY, LifecycleApp(args), options))
    except TrademeshError as exc:
        print(f"trademesh: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
