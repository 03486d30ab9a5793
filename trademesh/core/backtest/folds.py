"""Walk-forward folds of a backtest's range [start, end): the range cut into K + 1 equal blocks;
fold i is tested out of sample on block i + 1, after its in-sample part, either the block just
before it (rolling: each fold's in-sample part is one block) or every block from the start
(anchored: the in-sample part grows). The test parts tile [start + one block, end) without
overlap; one fold is a plain out-of-sample split (first half in sample, second half out).
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.platform.errors import InvalidArgument

__all__ = ["MAX_FOLDS", "Fold", "folds"]

MAX_FOLDS = 100


@dataclass(frozen=True)
class Fold:
    index: int
    train_start_ns: int
    train_end_ns: int  # = test_start_ns
    test_start_ns: int
    test_end_ns: int


def folds(start_ns: int, end_ns: int, count: int, anchored: bool = False) -> list[Fold]:
    if not 1 <= count <= MAX_FOLDS:
        raise InvalidArgument.field("folds", f"{count} is out of range: 1 to {MAX_FOLDS}")
    if end_ns - start_ns < count + 1:
        raise InvalidArgument.field("folds", f"{count} folds do not fit the range")
    span = end_ns - start_ns
    edges = [start_ns + span * block // (count + 1) for block in range(count + 2)]
    return [
        Fold(i, edges[0] if anchored else edges[i], edges[i + 1], edges[i + 1], edges[i + 2])
        for i in range(count)
    ]
