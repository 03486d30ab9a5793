"""The bars' VWAP rule (trademesh.core.domain.bar.vwap_text: the bar service's, `data download`'s and
`data import`'s) against an independent reckoning in fractions, on every kind of quotient the rule
tells apart: exact when the quotient terminates within 38 significant digits, else rounded
half-even to 16 decimal places; its text without trailing zeros; "" without volume."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

from trademesh.core.domain.bar import vwap_text
from trademesh.core.domain.decimals import WIDE

PLACES, DIGITS = 16, 38


def quotients(count: int) -> list[tuple[Decimal, Decimal]]:
    """(quote volume, volume) pairs of every kind the rule tells apart: quotients that do not
    terminate, that terminate within 16 places, beyond them within 38 digits, beyond 38 digits
    (ties at the 17th place among them), tiny, huge, negative (a generic CSV's), zero."""
    rng = random.Random(59)
    pairs = []
    for n in range(count):
        kind = n % 7
        if kind == 0:
            volume, quote = (
                Decimal(rng.randint(1, 10**9)).scaleb(-8),
                Decimal(rng.randint(1, 10**16)).scaleb(-8),
            )
        elif kind == 1:  # a power of two: long terminating quotients
            volume = WIDE.divide(WIDE.power(2, rng.randint(1, 120)), WIDE.power(10, rng.randint(0, 5)))
            quote = Decimal(rng.randint(1, 10**6)).scaleb(-rng.randint(0, 8))
        elif kind == 2:  # exact with 43 digits, a tie at the 17th place
            tie = Decimal(f"{rng.randint(10**25, 10**26)}.{rng.randint(0, 10**16 - 1):016d}5")
            volume, quote = Decimal(4), WIDE.multiply(tie, Decimal(4 * rng.choice((1, -1))))
        elif kind == 3:  # tiny
            volume, quote = (
                Decimal(rng.randint(1, 10**20)),
                Decimal(rng.randint(1, 10**6)).scaleb(-rng.randint(10, 30)),
            )
        elif kind == 4:  # huge
            volume = Decimal(rng.randint(1, 1000)).scaleb(-rng.randint(0, 10))
            quote = Decimal(rng.randint(1, 10**30)).scaleb(rng.randint(0, 20))
        elif kind == 5:
            volume = Decimal(rng.randint(-(10**9), 10**9) or 1).scaleb(-4)
            quote = Decimal(rng.randint(-(10**12), 10**12)).scaleb(-6)
        else:
            volume = Decimal(rng.randint(1, 999))
            quote = (
                Decimal(0) if n % 3 == 0 else volume * rng.randint(1, 10**5) / rng.choice((1, 3, 7, 16, 1024))
            )
        pairs.append((quote, volume))
    return pairs


def reference(quote: Decimal, volume: Decimal) -> str:
    """The rule, reckoned in fractions (no decimal context)."""
    if volume == 0:
        return ""
    exact = Fraction(quote) / Fraction(volume)
    places = _terminating_places(exact)
    if places is not None:
        text = _plain(exact, places)
        if len(text.replace("-", "").replace(".", "").lstrip("0")) <= DIGITS:
            return _trimmed(text)
    scaled = exact * 10**PLACES
    whole = scaled.numerator // scaled.denominator  # floor
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return _trimmed(_plain(Fraction(whole, 10**PLACES), PLACES))


def _terminating_places(value: Fraction) -> int | None:
    """The decimal places `value` needs, None when its expansion does not end."""
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    return max(twos, fives) if denominator == 1 else None


def _plain(value: Fraction, places: int) -> str:
    units = value * 10**places
    assert units.denominator == 1
    sign, digits = ("-" if units < 0 else ""), str(abs(units.numerator)).rjust(places + 1, "0")
    return sign + (digits[:-places] + "." + digits[-places:] if places else digits)


def _trimmed(text: str) -> str:
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text in ("", "-0") else text


def test_the_vwap_is_the_rule_for_every_kind_of_quotient() -> None:
    pairs = [
        *quotients(14_000),
        (Decimal("1E+50"), Decimal(1)),
        (Decimal(1), Decimal(3)),
        (Decimal(7), Decimal(0)),
    ]
    wrong = [(q, v, vwap_text(q, v), reference(q, v)) for q, v in pairs if vwap_text(q, v) != reference(q, v)]
    assert wrong == [], wrong[:5]


def test_its_cases_by_hand() -> None:
    assert vwap_text(Decimal("2737.87910095"), Decimal("2.73878288")) == "999.6700070470719461"
    assert vwap_text(Decimal(10), Decimal(4)) == "2.5"
    assert vwap_text(Decimal(3), Decimal(1048576)) == "0.00000286102294921875"  # 20 places, kept whole
    assert vwap_text(Decimal(2), Decimal(3)) == "0.6666666666666667"
    tie = Decimal("100000000000000000000000000.0000000000000002")  # / 4: 43 digits, a tie to even
    assert vwap_text(tie, Decimal(4)) == "25000000000000000000000000"
    assert vwap_text(Decimal("1250.00"), Decimal("12.5")) == "100"
    assert vwap_text(Decimal(1), Decimal(0)) == ""
