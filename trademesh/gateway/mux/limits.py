"""The multiplexer's bounds: what one session, and one credential's key, may hold at once
(declared with the gateway's config, trademesh.gateway.config: its flags are the config's)."""

from __future__ import annotations

from trademesh.gateway.config import MuxLimits

__all__ = ["MuxLimits"]
