"""Sessions derived from the project's own captures, for venue behaviour those captures lack.

Each variant copies a recorded session into a test's folder and changes it the way a venue
(or another recorder) does, named for what it models:
- `without_book_sequence`: OKX book frames without seqId/prevSeqId, as OKX sent them before
  it numbered its books and as some recorders keep them: only the checksum can tell that
  an update was lost;
- `with_repeated_trade`: OKX's habit of pushing its latest trade again on every subscribe,
  inserted where the replay's disconnect fault makes the client subscribe again;
- `with_stream_stopping`: one channel's frames end halfway while the others go on (a
  venue that stops sending a stream without closing the connection).

The lines keep the capture format (fixtures/exchange-captures/README.md); only received
market frames are touched.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "market_lines",
    "with_repeated_trade",
    "with_stream_stopping",
    "without_book_sequence",
]

Frame = dict[str, Any]


def _received(line: str) -> tuple[str, Frame] | None:
    """(timestamp text, frame) of a received market frame line; None for any other line."""
    head, sep, text = line.partition(": ")
    if not sep or not head.replace(".", "").isdigit() or not text.startswith("{"):
        return None
    frame = json.loads(text)
    return (head, frame) if isinstance(frame, dict) and "data" in frame else None


def _line(head: str, frame: Frame) -> str:
    return f"{head}: {json.dumps(frame, separators=(',', ':'))}"


def _copy(files: Sequence[Path], folder: Path, edit: Callable[[Path, list[str]], list[str]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in files:
        target = folder / path.name
        if ".ws." in path.name:
            lines = edit(path, path.read_text().splitlines())
            target.write_text("\n".join(lines) + "\n")
        else:
            shutil.copyfile(path, target)
        copies.append(target)
    return copies


def market_lines(files: Sequence[Path]) -> list[tuple[float, Frame]]:
    """Every received market frame of the session's connections, in receive-time order."""
    found = []
    for path in files:
        if ".ws." not in path.name:
            continue
        for line in path.read_text().splitlines():
            parsed = _received(line)
            if parsed is not None:
                found.append((float(parsed[0]), parsed[1]))
    return sorted(found, key=lambda item: item[0])


def without_book_sequence(files: Sequence[Path], folder: Path) -> list[Path]:
    """OKX `books` frames without seqId/prevSeqId (checksums kept)."""

    def edit(path: Path, lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            parsed = _received(line)
            if parsed is not None and parsed[1].get("arg", {}).get("channel") == "books":
                head, frame = parsed
                for data in frame["data"]:
                    data.pop("seqId", None)
                    data.pop("prevSeqId", None)
                line = _line(head, frame)
            out.append(line)
        return out

    return _copy(files, folder, edit)


def with_repeated_trade(files: Sequence[Path], folder: Path, at: int) -> list[Path]:
    """The latest trade before market frame `at` sent again as frame `at` (for `disconnect@<at>`).

    `at` counts the received market frames of all connections in receive-time order, as the
    replay does; the repeated frame gets the receive time of the frame it goes before.
    """
    frames = market_lines(files)
    trades = [frame for _, frame in frames[:at] if frame.get("arg", {}).get("channel") == "trades"]
    if not trades:
        raise ValueError(f"no trade before market frame {at}")
    ts_before = frames[at][0]

    def edit(path: Path, lines: list[str]) -> list[str]:
        out = []
        inserted = not any('"channel":"trades"' in line for line in lines)  # not the trades connection
        for line in lines:
            parsed = _received(line)
            if not inserted and parsed is not None and float(parsed[0]) >= ts_before:
                out.append(_line(parsed[0], trades[-1]))
                inserted = True
            out.append(line)
        return out

    return _copy(files, folder, edit)


def with_stream_stopping(files: Sequence[Path], folder: Path, channel: str, after_s: float) -> list[Path]:
    """No more frames of `channel` once `after_s` seconds of the session have passed."""
    start = market_lines(files)[0][0]

    def edit(path: Path, lines: list[str]) -> list[str]:
        out = []
        for line in lines:
            parsed = _received(line)
            if (
                parsed is not None
                and parsed[1].get("arg", {}).get("channel") == channel
                and float(parsed[0]) - start > after_s
            ):
                continue
            out.append(line)
        return out

    return _copy(files, folder, edit)
