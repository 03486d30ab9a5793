"""The Screener (issue 42): scans over a venue's instruments, defined in TOML
(trademesh/core/screener/screens/), ranked on a cadence. Its engine (trademesh.core.screener.engine) is
a pure core; the service shell comes later."""
