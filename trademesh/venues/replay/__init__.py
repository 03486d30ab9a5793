"""Replay harness: a local stand-in for a venue's REST and WebSocket endpoints.

It serves a recorded session (trademesh/venues/replay/capture.py reads the line format of
fixtures/exchange-captures/README.md) in the venue's own wire formats, so the venue's real ccxt.pro
client, pointed at it through ccxt's `urls` option, runs offline exactly as it would against the
exchange. What is venue-specific (how a subscription is answered, which topic a frame belongs to,
what a REST path returns) lives in each venue's `standin/` package as a ReplayAdapter;
trademesh.venues.replay.loader imports it only when a replay is asked for.
"""
