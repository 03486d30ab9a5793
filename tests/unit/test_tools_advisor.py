"""The advisor's MCP tools (trademesh.core.tools.advisor) against an Advisor server in this process: an
argument out of its field's range is refused naming it before anything is asked (a time past
int64 once left the tool with a protobuf ValueError: a crash, not an answer the model can read)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.tools.advisor import ADVISOR, AdvisorTools
from trademesh.core.tools.upstream import Upstream


class Decisions(av_grpc.AdvisorServicer):
    """No decisions; every request kept, to see what the tools asked for."""

    def __init__(self) -> None:
        self.asked: list[Message] = []

    async def ListDecisions(self, request: av.ListDecisionsRequest, context: Any) -> av.ListDecisionsResponse:
        self.asked.append(request)
        return av.ListDecisionsResponse()

    # The tools these tests call ask nothing else.
    async def Decide(self, request: av.DecideRequest, context: Any) -> av.DecideResponse:
        raise AssertionError("not asked here")

    async def GetDecision(self, request: av.GetDecisionRequest, context: Any) -> av.GetDecisionResponse:
        raise AssertionError("not asked here")

    async def WatchDecisions(
        self, request: av.WatchDecisionsRequest, context: Any
    ) -> AsyncIterator[av.WatchDecisionsResponse]:
        answers: list[av.WatchDecisionsResponse] = []  # no tool here watches: the stream ends at once
        for answer in answers:
            yield answer

    async def GetCalibration(
        self, request: av.GetCalibrationRequest, context: Any
    ) -> av.GetCalibrationResponse:
        raise AssertionError("not asked here")

    async def GetModel(self, request: av.GetModelRequest, context: Any) -> av.GetModelResponse:
        raise AssertionError("not asked here")


class _At:
    """A Resolver with the one Advisor instance."""

    def __init__(self, address: str) -> None:
        self.address = address

    def resolve(self, service: str, target: str | None) -> str:
        assert service == ADVISOR
        return self.address

    def names(self, service: str) -> list[str]:
        return ["advisor"]


@pytest.fixture
async def advisor() -> AsyncIterator[tuple[Decisions, AdvisorTools]]:
    servicer = Decisions()
    server = grpc.aio.server()
    av_grpc.add_AdvisorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    upstream = Upstream(_At(f"127.0.0.1:{port}"), 5.0)
    try:
        yield servicer, AdvisorTools(upstream)
    finally:
        await upstream.close()
        await server.stop(None)


@pytest.mark.parametrize("since_ns", [2**63, 2**70, -1])
async def test_decisions_since_a_time_out_of_range_are_refused_naming_it(
    advisor: tuple[Decisions, AdvisorTools], since_ns: int
) -> None:
    servicer, tools = advisor
    with pytest.raises(InvalidArgument) as caught:
        await tools.advisor_decisions(since_ns=since_ns)
    assert [v.field for v in caught.value.violations] == ["since_ns"]
    assert servicer.asked == []


async def test_decisions_since_the_last_int64_nanosecond_are_asked_for(
    advisor: tuple[Decisions, AdvisorTools],
) -> None:
    servicer, tools = advisor
    await tools.advisor_decisions(since_ns=2**63 - 1)
    (asked,) = servicer.asked
    assert isinstance(asked, av.ListDecisionsRequest) and asked.since_ns == 2**63 - 1
