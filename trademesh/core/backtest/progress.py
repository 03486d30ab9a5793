"""A run's progress shown: the command line's bar (tqdm: the data time reached, events/s and the
ETA), or JSON lines for the backtest hub."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

from trademesh.core.backtest.session import RunProgress

__all__ = ["JsonProgress", "ProgressBar"]

_STEPS = 1000  # the bar counts thousandths of the range


class ProgressBar:
    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._bar: tqdm[Any] | None = None

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            # disable=None: no bar when stderr is not a terminal (a log, a pipe).
            self._bar = tqdm(
                total=_STEPS, unit="‰", bar_format="{l_bar}{bar}| {postfix}", leave=True, disable=None
            )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, progress: RunProgress) -> None:
        bar = self._bar
        if bar is None:
            return
        bar.n = round(progress.fraction * _STEPS)
        eta = progress.eta_s
        data_time = datetime.fromtimestamp(progress.data_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")
        bar.set_postfix_str(
            f"data {data_time} · {progress.events_per_s:,.0f} events/s · ETA {_eta(eta)}", refresh=True
        )


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class JsonProgress:
    """RunProgress as one JSON object a line on stdout (`--progress-json`): how the backtest hub
    (trademesh.core.backtest.hub) follows a run it started in a child process."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    def __enter__(self) -> JsonProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, progress: RunProgress) -> None:
        eta = progress.eta_s
        fields = {
            "data_ns": progress.data_ns, "fraction": progress.fraction, "events": progress.events,
            "events_per_s": progress.events_per_s, "eta_s": -1.0 if eta is None else eta,
        }  # fmt: skip
        line = {"progress": {**fields, "done": progress.done}}
        self.stream.write(json.dumps(line) + "\n")
        self.stream.flush()
