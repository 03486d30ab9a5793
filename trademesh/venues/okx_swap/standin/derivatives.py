"""OKX's liquidation orders channel for the replay stand-in.

The other public channels name an instrument in their `arg` ({"channel", "instId"}), which the
stand-in routes by (channel:instId). The liquidation orders channel is subscribed by instrument
type, {"channel": "liquidation-orders", "instType": "SWAP"}, and its pushes carry the instrument
in their data ({"arg": {"channel", "instType"}, "data": [{"instId", "details": [...]}]};
https://www.okx.com/docs-v5/en/, Public Data, WebSocket, Liquidation orders channel). So a push
is routed as "liquidation-orders:<its data's instId>", and a subscription by type joins that
topic of every listed instrument of the type (an unsubscription leaves them).
"""

from __future__ import annotations

import json
from typing import Any

from trademesh.venues.okx.standin.adapter import OkxReplay
from trademesh.venues.replay.adapter import MockConnection
from trademesh.venues.replay.capture import WsFrame

__all__ = ["LIQUIDATIONS", "OkxLiquidationsReplay"]

LIQUIDATIONS = "liquidation-orders"


class OkxLiquidationsReplay(OkxReplay):
    """OkxReplay with the liquidation orders channel routed by its data's instrument."""

    def topic(self, frame: WsFrame) -> str | None:
        if f'"channel":"{LIQUIDATIONS}"' in frame.text and '"data"' in frame.text:
            data = json.loads(frame.text).get("data") or [{}]
            inst_id = data[0].get("instId")
            return f"{LIQUIDATIONS}:{inst_id}" if inst_id else None
        return super().topic(frame)

    def _subscription(self, connection: MockConnection, op: str, arg: dict[str, str]) -> list[str]:
        if arg.get("channel") != LIQUIDATIONS:
            return super()._subscription(connection, op, arg)
        inst_type = arg.get("instType", "")
        for inst_id, instrument in self.orders.instruments.items():
            if instrument.inst_type == inst_type:
                topic = f"{LIQUIDATIONS}:{inst_id}"
                connection.unsubscribe(topic) if op == "unsubscribe" else connection.subscribe(topic)
        answer: dict[str, Any] = {"event": op, "arg": arg, "connId": "5e2b7c19"}
        return [json.dumps(answer, separators=(",", ":"))]
