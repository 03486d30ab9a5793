"""Backtests (issue 18): recorded history through the same engine cores as live.

- `source.py` the recorder's history as live wire messages in time order (bounded memory);
- `market.py` the replayed venue: the sim's matching engine under the recorded book and trades,
  with latency and queue position;
- `detect.py`, `advise.py`, `inspect.py`, `books.py` the detector, advisor, inspector and ledger
  cores, each moved as its live shell moves it;
- `run.py` one run on a simulated clock; `session.py` drives it over a stream with progress;
- `results.py`, `trips.py`, `metrics.py`, `outcome.py`, `report.py`, `summary.py` what a run gives;
- `config.py`, `assemble.py`, `command.py` `trademesh backtest`;
- `sweep.py`, `folds.py`, `trial.py`, `runners.py`, `walkforward.py`, `sweep_table.py`,
  `sweep_command.py` parameter sweeps and walk-forward (`trademesh backtest-sweep`).
"""
