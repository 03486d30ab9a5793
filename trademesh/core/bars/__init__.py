"""The bar aggregator: OHLCV bars from the bus's trades, checkpointed, with gap repair.

engine.py builds bars by event time (pure, no I/O); checkpoint.py stores its state with the
bars it published and the entries it consumed in one Redis transaction (exactly once across
crashes); repair.py replaces the bars of gaps and seams with the venue's historical candles.
The model is described in docs/bars.md.
"""
