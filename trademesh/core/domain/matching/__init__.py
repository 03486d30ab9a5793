"""The simulated exchange: price-time matching (engine), accounts and fees (order_manager,
accounts), stops, the price band and funding, behind SimExchange (exchange). The sim venue
(trademesh/venues/sim) serves it live; the backtest (trademesh/core/backtest) replays
recorded markets through it. It imports no service and no venue."""
