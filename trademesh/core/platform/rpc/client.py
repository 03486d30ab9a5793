"""What a mesh service needs to call another: its bearer token as call metadata, and the trace
it is working for (W3C `traceparent`), so the callee's log lines carry the same trace id.

Every service holds the mesh token (TRADEMESH_TOKEN). The trading credential
(TRADEMESH_TRADE_TOKEN) is the inspector's alone: a venue places and cancels orders only for it.
"""

from __future__ import annotations

import secrets

from trademesh.core.platform.config.env import TOKEN, token_secret, trade_token_variable
from trademesh.core.platform.logs.setup import bound_trace_id

__all__ = ["Metadata", "auth_metadata", "trace_metadata", "trade_auth_metadata"]

Metadata = tuple[tuple[str, str], ...]


def auth_metadata() -> Metadata:
    """`authorization: Bearer <TRADEMESH_TOKEN>` when a token is set, else nothing."""
    token = token_secret(TOKEN)
    return (("authorization", f"Bearer {token}"),) if token else ()


def trade_auth_metadata(venue: str | None = None) -> Metadata:
    """`authorization: Bearer <TRADEMESH_TRADE_TOKEN>` when the trading credential is set, else
    nothing: what the inspector sends a venue (it is good for the venue's reads too). To an
    account's `venue` ("binance.desk-a"), the account's own credential when that is set
    (trademesh.core.platform.config.env.trade_token_variable; docs/accounts.md)."""
    token = token_secret(trade_token_variable(venue or ""))
    return (("authorization", f"Bearer {token}"),) if token else ()


def trace_metadata() -> Metadata:
    """`traceparent: 00-<trace id>-<new span id>-01` when this task works for a trace (its call
    came with one), else nothing: the trace goes on to the next service's log lines."""
    trace_id = bound_trace_id()
    return (("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),) if trace_id else ()
