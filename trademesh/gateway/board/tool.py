"""The MCP tool services_overview: the services board's snapshot as JSON."""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import MessageToDict

from trademesh.gateway.board.board import Board

__all__ = ["BoardTools"]


class BoardTools:
    def __init__(self, board: Board) -> None:
        self._board = board

    async def services_overview(self) -> dict[str, Any]:
        """Every service instance registered with the gateway (venues, core services, the gateway
        itself): name, kind, instance_id, address, version, registered_at_ns (uptime is
        taken_at_ns minus it), health (HEALTH_SERVING, HEALTH_NOT_SERVING, HEALTH_UNREACHABLE or
        HEALTH_UNKNOWN), and its key figures from its Prometheus metrics: events_per_s (the work
        it does), bus_lag (entries not yet delivered to its bus consumer groups), errors_per_s
        (gRPC calls failed). A figure with present=false could not be read: `why` says why (it is
        not a zero). Firing alerts from Alertmanager are attached to the instance they name
        (alerts) or listed as mesh_alerts. Checked every 2 s by the gateway while looked at."""
        snapshot = await self._board.fresh()
        return MessageToDict(
            snapshot, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
