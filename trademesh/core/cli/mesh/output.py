"""Where `trademesh up`'s lines go: the terminal, calm or verbose, and the mesh's log file.

Calm (the default): the terminal shows up's own lines (the start, each service once serving
with its address, "all services healthy", the Studio URL, progress, restarts, the stop) and a
service's lines at WARNING and above, each prefixed with its name; a service's DEBUG/INFO
records and its serving line go to the log file alone. A line that is no log record (a CLI
error, a crash's traceback) is shown: it may be all that says why a service exited. Verbose
(`up --verbose`): the terminal shows every line, as before. The log file holds every line in
both modes: <data-dir>/logs/up.log, each run's own (the last runs' kept as up.log.1, .2, ...),
rolled over at LOG_MAX_BYTES. The services' records reach the log stream (LogHub) on their own:
each service writes them to the bus itself (trademesh.core.platform.logs.setup), not through up.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import TextIO

from trademesh.core.platform.service.process import STARTED_EVENTS

__all__ = ["LOG_FILE", "CalmLines", "LogFile", "MeshOutput"]

LOG_FILE = Path("logs") / "up.log"
LOG_MAX_BYTES = 64 * 1024 * 1024
LOG_KEEP = 3
# A record's first line in trademesh.core.platform.logs.setup's text format: "<asctime> <LEVEL>
# <service> ...".
_TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([A-Z]+) ")
_WIDTH = 8  # up's own prefix: "mesh     | "


class LogFile:
    """An append-only text file of lines (mode 600), rolled over at `max_bytes`; a new run's first
    line starts a file of its own (the last run's becomes <name>.1)."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES, keep: int = LOG_KEEP) -> None:
        self.path, self.max_bytes, self.keep = path, max_bytes, keep
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists() and path.stat().st_size > 0:
            self._roll()
        self._file = self._open()
        self._size = 0

    def _open(self) -> TextIO:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, "a", encoding="utf-8", errors="replace", buffering=1)

    def _roll(self) -> None:
        for index in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def write(self, line: str) -> None:
        self._file.write(line)
        self._size += len(line)
        if self._size >= self.max_bytes:
            self._file.close()
            self._roll()
            self._file, self._size = self._open(), 0

    def close(self) -> None:
        self._file.close()


def _record_level(text: str) -> int | None:
    """The level of a log record's first line (text or JSON format), None when it is no record."""
    found = _TEXT_RECORD.match(text)
    if found is not None:
        return logging.getLevelNamesMapping().get(found[1])
    if text.startswith("{"):
        try:
            line = json.loads(text)
        except ValueError:
            return None
        if isinstance(line, dict):
            if line.get("event") in STARTED_EVENTS:
                return logging.INFO  # its serving line: up says it in its own words
            level = line.get("level")
            return logging.getLevelNamesMapping().get(level) if isinstance(level, str) else None
    return None


class CalmLines:
    """Which lines of one of a service's streams the calm terminal shows: records at WARNING and
    above, lines that are no record (a CLI error, a traceback); an indented or blank line goes
    with the line before it (a traceback's frames, a record's further lines)."""

    def __init__(self) -> None:
        self._last = True

    def shown(self, text: str) -> bool:
        if not text or text[0].isspace():
            return self._last
        level = _record_level(text)
        self._last = level is None or level >= logging.WARNING
        return self._last


class MeshOutput:
    """up's lines: all of them to the log file (when it has one); to the terminal (sys.stdout
    unless given) all of them when verbose, else the calm ones."""

    def __init__(
        self, terminal: TextIO | None = None, log: LogFile | None = None, verbose: bool = True
    ) -> None:
        self._terminal = terminal
        self.log = log
        self.verbose = verbose

    def line(self, text: str, shown: bool = True) -> None:
        if self.log is not None:
            self.log.write(text + "\n")
        if shown or self.verbose:
            terminal = self._terminal or sys.stdout
            terminal.write(text + "\n")
            terminal.flush()

    def say(self, text: str) -> None:
        """One of up's own lines: always on the terminal."""
        self.line(f"{'mesh':<{_WIDTH}} | {text}")

    def take_logging(self) -> logging.Handler:
        """up's own log records: to the log file, and to the terminal at WARNING and above unless
        verbose. Returns the handler added, to remove when up ends."""
        root = logging.getLogger()
        terminal = [h for h in root.handlers if type(h) is logging.StreamHandler]
        if not self.verbose:
            for handler in terminal:
                handler.setLevel(logging.WARNING)
        to_file = _ToFile(self)
        if terminal and terminal[0].formatter is not None:
            to_file.setFormatter(terminal[0].formatter)
        root.addHandler(to_file)
        return to_file


class _ToFile(logging.Handler):
    def __init__(self, output: MeshOutput) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        if self.output.log is None:
            return
        try:
            self.output.log.write(self.format(record) + "\n")
        except Exception:  # a full disk must not stop the mesh; the terminal still has it
            self.handleError(record)
