"""How many examples the fuzz tests try: their full counts times TRADEMESH_FUZZ_SCALE.

The suite's run (`./dev test`, CI) fuzzes at half the full counts (0.5): the two fuzz modules
were a seventh of the suite's CPU on 2 cores, and each example is a fresh draw, so successive
runs cover what one run leaves out. A deeper run sets the scale: `TRADEMESH_FUZZ_SCALE=1` (the
full counts), or more for a long hunt (docs/testing.md)."""

from __future__ import annotations

import os

__all__ = ["FUZZ_SCALE", "scaled"]

_DEFAULT = 0.5


def _scale() -> float:
    text = os.environ.get("TRADEMESH_FUZZ_SCALE", "").strip()
    if not text:
        return _DEFAULT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 100:
        raise SystemExit(f"TRADEMESH_FUZZ_SCALE={text!r}: a number above 0 and at most 100")
    return value


FUZZ_SCALE = _scale()


def scaled(full: int) -> int:
    """`full` examples at the run's scale, at least one."""
    return max(1, round(full * FUZZ_SCALE))
