"""Overwatch: the market regime per venue, symbol and timeframe, and the mesh at a glance
(issue 42; docs/overwatch.md). So far its pure engine; the service shell comes next."""
