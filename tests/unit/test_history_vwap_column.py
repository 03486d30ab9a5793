"""The import's column-wise VWAPs (trademesh.core.history.layouts.vwap_texts) give the bars' rule's
text (trademesh.core.domain.bar.vwap_text) row for row, on blocks mixing every kind of quotient the
rule tells apart, and on blocks of one kind (where a block falls back as a whole or not)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from trademesh.core.domain.bar import vwap_text
from trademesh.core.domain.decimals import WIDE
from trademesh.core.history.layouts import vwap_texts


def pair(rng: random.Random, kind: int) -> tuple[Decimal, Decimal]:
    """(quote volume, volume): a Binance-like non-terminating quotient (0), a long terminating one
    (1), exact in 43 digits with a tie at the 17th place (2), tiny (3), over 10**21 (4), negative
    (5), a tie after a rounding to 38 digits (6), terminating within 16 places (7), volume 0 (8)."""
    if kind == 0:
        volume = Decimal(rng.randint(1, 10**9)).scaleb(-8)
        return Decimal(rng.randint(1, 10**16)).scaleb(-8), volume
    if kind == 1:
        volume = WIDE.divide(WIDE.power(2, rng.randint(1, 120)), WIDE.power(10, rng.randint(0, 5)))
        return Decimal(rng.randint(1, 10**6)).scaleb(-rng.randint(0, 8)), volume
    if kind == 2:
        tie = Decimal(f"{rng.randint(10**4, 10**20)}.{rng.randint(0, 10**16 - 1):016d}5")
        return WIDE.multiply(tie, Decimal(4 * rng.choice((1, -1)))), Decimal(4)
    if kind == 3:
        return Decimal(rng.randint(1, 10**6)).scaleb(-rng.randint(10, 30)), Decimal(rng.randint(1, 10**20))
    if kind == 4:
        volume = Decimal(rng.randint(1, 1000)).scaleb(-rng.randint(0, 10))
        return Decimal(rng.randint(1, 10**30)).scaleb(rng.randint(0, 20)), volume
    if kind == 5:
        volume = Decimal(rng.randint(-(10**9), 10**9) or 1).scaleb(-4)
        return Decimal(rng.randint(-(10**12), 10**12)).scaleb(-6), volume
    if kind == 6:  # x.xxx...5 + 1e-40 over 1: the 38-digit half-even quotient would be a tie
        base = Decimal(f"{rng.randint(1, 999)}.{rng.randint(0, 10**16 - 1):016d}5")
        return WIDE.multiply(WIDE.add(base, Decimal(rng.choice((1, -1))).scaleb(-40)), Decimal(3)), Decimal(3)
    if kind == 7:
        volume = Decimal(rng.choice((1, 2, 4, 5, 8, 16, 1024)))
        return Decimal(rng.randint(0, 10**9)).scaleb(-rng.randint(0, 8)), volume
    return Decimal(rng.randint(0, 10**9)).scaleb(-8), Decimal(0).scaleb(-rng.randint(0, 8))


def texts(pairs: list[tuple[Decimal, Decimal]]) -> tuple[list[str], list[str]]:
    return [str(q) for q, _ in pairs], [str(v) for _, v in pairs]


def expected(pairs: list[tuple[Decimal, Decimal]]) -> list[str | None]:
    return [vwap_text(q, v) or None for q, v in pairs]


@pytest.mark.parametrize("kind", range(9))
def test_a_block_of_one_kind_gives_the_rule_s_text(kind: int) -> None:
    rng = random.Random(kind)
    pairs = [pair(rng, kind) for _ in range(300)]
    assert vwap_texts(*texts(pairs)) == expected(pairs)


def test_mixed_blocks_give_the_rule_s_text_row_for_row() -> None:
    rng = random.Random(59)
    for size in (1, 2, 7, 50, 400):
        for _ in range(20):
            pairs = [pair(rng, rng.choice((0, 0, 0, rng.randrange(9)))) for _ in range(size)]
            assert vwap_texts(*texts(pairs)) == expected(pairs)


def test_binance_text_as_the_archive_has_it() -> None:
    quotes = ["6988.72669589", "0.00000000", "1000.00000000", "0.00000012", "5.00000000"]
    volumes = ["6.98935573", "0.00000000", "8.00000000", "3.00000000", "0.00000000"]
    assert vwap_texts(quotes, volumes) == ["999.9100011311056849", None, "125", "0.00000004", None]
