"""The multiplexer: many server streams of the mesh over one gRPC-web stream per browser tab.

A browser keeps at most 6 HTTP/1.1 connections per origin and every open server stream holds
one; with trademesh.mux.v1.Mux a Studio tab holds one stream however many panels subscribe.
"""

from __future__ import annotations

from trademesh.gateway.mux.checks import MUX_SERVICE
from trademesh.gateway.mux.limits import MuxLimits
from trademesh.gateway.mux.service import Multiplexer

__all__ = ["MUX_SERVICE", "Multiplexer", "MuxLimits"]
