"""History from the past: exchanges' public archives and generic CSV files imported into the
recorder's own tables (bars, trades), and what those tables hold per venue, symbol and
timeframe (coverage). Design: docs/history.md."""
