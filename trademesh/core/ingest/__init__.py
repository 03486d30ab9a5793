"""Ingest: follows every configured venue's MarketData and publishes it to the bus."""
