"""The detector: strategies as patches (module graphs) evaluated on market data, emitting
signals (docs/detector.md). `engine/` is the pure core (no I/O, no wall clock); the service
shell around it connects it to the venues, the bus and the API."""
