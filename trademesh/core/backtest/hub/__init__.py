"""The backtest hub (`trademesh backtester`): starts runs of trademesh.core.backtest in child processes,
follows their progress, and serves their stored results (trademesh.backtest.v1.Backtest)."""
