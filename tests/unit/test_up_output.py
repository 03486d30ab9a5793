"""`trademesh up`'s calm terminal and its log file (trademesh.core.cli.mesh.output): which service lines the
terminal shows, and the file that keeps them all (tests/integration/test_up.py runs the mesh)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from trademesh.core.cli.mesh.output import CalmLines, LogFile, MeshOutput

INFO = (
    "2026-11-29 08:17:59,335 INFO venue/sim trademesh.venues.sim.venue: sim played 1200 s of history in 6.6 s"
)
WARNING = (
    "2026-11-29 08:18:22,149 WARNING screener trademesh.core.screener.prices: no live instance named 'x'"
)
ERROR = "2026-11-29 08:18:22,150 ERROR inspector trademesh.core.inspector.app: the check failed"
SERVING = json.dumps({"event": "serving", "service": "ingest", "host": "127.0.0.1", "port": 1})


def _shown(lines: list[str]) -> list[str]:
    calm = CalmLines()
    return [line for line in lines if calm.shown(line)]


def test_info_records_and_the_serving_line_are_kept_off_the_terminal() -> None:
    assert _shown([INFO, SERVING, INFO.replace(" INFO ", " DEBUG ")]) == []


def test_warnings_errors_and_their_tracebacks_are_shown() -> None:
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1, in f', "ValueError: bad"]
    lines = [INFO, WARNING, INFO, ERROR, *traceback, INFO]
    assert _shown(lines) == [WARNING, ERROR, *traceback]


def test_an_info_records_further_lines_stay_with_it() -> None:
    assert _shown([INFO, "    more of the message", "", WARNING, "    its detail"]) == [
        WARNING,
        "    its detail",
    ]


def test_a_line_that_is_no_record_is_shown() -> None:
    """A CLI error (what a service says before it exits) follows INFO records: still shown."""
    error = "trademesh: account desk-z at binance has no credentials"
    assert _shown([INFO, error, "Traceback (most recent call last):", "  File"]) == [
        error,
        "Traceback (most recent call last):",
        "  File",
    ]


def test_json_records_by_their_level() -> None:
    info = json.dumps({"ts": "t", "level": "INFO", "service": "bars", "message": "m"})
    warning = json.dumps({"ts": "t", "level": "WARNING", "service": "bars", "message": "m"})
    assert _shown([info, SERVING, warning, "{not json"]) == [warning, "{not json"]


def test_calm_output_writes_every_line_to_the_file_and_the_shown_ones_to_the_terminal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "logs" / "up.log"
    terminal = io.StringIO()
    output = MeshOutput(terminal, LogFile(path), verbose=False)
    output.line(f"sim | {INFO}", shown=False)
    output.line(f"screener | {WARNING}", shown=True)
    output.say("all services healthy")
    output.log.close()  # type: ignore[union-attr]
    assert terminal.getvalue().splitlines() == [f"screener | {WARNING}", "mesh     | all services healthy"]
    assert path.read_text().splitlines() == [
        f"sim | {INFO}",
        f"screener | {WARNING}",
        "mesh     | all services healthy",
    ]
    assert path.stat().st_mode & 0o777 == 0o600


def test_verbose_output_shows_every_line(tmp_path: Path) -> None:
    terminal = io.StringIO()
    output = MeshOutput(terminal, None, verbose=True)
    output.line(f"sim | {INFO}", shown=False)
    assert terminal.getvalue() == f"sim | {INFO}\n"


def test_each_run_has_its_own_file_and_a_long_one_rolls_over(tmp_path: Path) -> None:
    path = tmp_path / "up.log"
    first = LogFile(path)
    first.write("run 1\n")
    first.close()
    second = LogFile(path, max_bytes=20, keep=2)
    assert (tmp_path / "up.log.1").read_text() == "run 1\n" and path.read_text() == ""
    second.write("run 2, line 1\n")
    second.write("run 2, line 2\n")  # past 20 bytes: rolled over
    second.write("run 2, line 3\n")
    second.close()
    assert (tmp_path / "up.log.2").read_text() == "run 1\n"
    assert (tmp_path / "up.log.1").read_text() == "run 2, line 1\nrun 2, line 2\n"
    assert path.read_text() == "run 2, line 3\n"
