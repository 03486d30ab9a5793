"""One grpc.aio channel per upstream address, shared by every call a process makes there (the
gateway's forwarding, the tools', the inspector's and the ledger's venue links)."""

from __future__ import annotations

import grpc

__all__ = ["Upstreams"]

# As large as the services send (trademesh.core.platform.rpc.server): a full book snapshot batch is big.
_MESSAGE_LIMIT_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", _MESSAGE_LIMIT_BYTES),
    ("grpc.max_receive_message_length", _MESSAGE_LIMIT_BYTES),
    # Long-lived streams cross idle periods; keepalives notice a dead peer without waiting for TCP.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    # A restarted instance is back in seconds at the same address: grpc's default reconnect
    # backoff (up to 120 s) would answer UNAVAILABLE long after it serves again.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


class Upstreams:
    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    def channel(self, address: str) -> grpc.aio.Channel:
        found = self._channels.get(address)
        if found is None:
            found = self._channels[address] = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        return found

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
