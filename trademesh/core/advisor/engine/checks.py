"""Stage 6's checks of an LLM answer: parsed against the answer schema, then checked for
hallucinations. Each finding is a flag (raised as a `hallucination_flag` event); the policy
(synthesis.py) discards the answer or down-weights it.

| check | flagged when |
|---|---|
| invalid_json | the text is not a JSON object |
| missing_field | a schema field is absent (or the reasoning is empty) |
| out_of_range | a field has the wrong type or a value outside the schema |
| unexpected_field | the object has fields the schema does not know |
| invented_number | a number in the reasoning appears nowhere in the request or the tool results |
| contradicting_direction | the bias is the signal's opposite and the reasoning states no reason |

A number is grounded when some number in the request's JSON text (values, and digits in keys
such as "rsi_14") or in the results of the tools the model called (as it read them: the
answer event carries them), or that number times 100 (a ratio quoted as a percent), equals it up to the
rounding of its last digit or up to `number_tolerance` relative to it. Signs and thousands
separators are ignored; integers up to `small_integer_limit` pass ("the last 3 bars").
A number beyond 10^±FIGURE_EXPONENT is no market figure but digits and an "e" inside an id
("…4e1234567…" in a hex order id): it grounds only itself, quoted as it is (near it, arithmetic
would overflow Decimal's range: a backtest run ended on that).
A stated reason is one of REASON_MARKERS in the reasoning.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from trademesh.core.advisor.engine.answer import ANSWER_FIELDS
from trademesh.core.advisor.engine.config import SynthesisConfig
from trademesh.core.domain.contracts.signal import Direction
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.parsing import loads_json

__all__ = ["CHECKS", "REASON_MARKERS", "AnswerFlag", "ParsedAnswer", "check_answer", "grounded", "numbers_in"]

CHECKS: tuple[str, ...] = (
    "invalid_json",
    "missing_field",
    "out_of_range",
    "unexpected_field",
    "invented_number",
    "contradicting_direction",
)
REASON_MARKERS: tuple[str, ...] = (
    "because", "due to", "since", "despite", "however", "although", "given", "owing to", "but",
    "while", "whereas", "contrary",
)  # fmt: skip
FIGURE_EXPONENT = 40  # no price, size, ratio or nanosecond time is beyond 10^±40
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_MARKERS = re.compile(r"\b(?:" + "|".join(re.escape(m) for m in REASON_MARKERS) + r")\b", re.IGNORECASE)
_BIASES = {d.value: d for d in Direction}
_OPPOSITE = {Direction.LONG: Direction.SHORT, Direction.SHORT: Direction.LONG}


@dataclass(frozen=True, slots=True)
class AnswerFlag:
    check: str  # one of CHECKS
    field: str  # the answer's field ("" for the whole answer)
    detail: str


@dataclass(frozen=True)
class ParsedAnswer:
    bias: Direction | None
    confidence: float | None
    size_multiplier: Decimal | None
    reasoning: str | None
    flags: tuple[AnswerFlag, ...]


def numbers_in(text: str) -> list[Decimal]:
    out = []
    for match in _NUMBER.finditer(text):
        try:
            out.append(Decimal(match.group().replace(",", "")))
        except InvalidOperation:
            continue
    return out


def _is_figure(n: Decimal) -> bool:
    """Whether n is within the range of any figure a market or a context holds."""
    return -FIGURE_EXPONENT <= n.adjusted() <= FIGURE_EXPONENT


def _half_unit(n: Decimal) -> Decimal:
    exponent = n.as_tuple().exponent
    return Decimal(5).scaleb(exponent - 1) if isinstance(exponent, int) else Decimal(0)


def grounded(n: Decimal, pool: list[Decimal], cfg: SynthesisConfig) -> bool:
    if not _is_figure(n):
        return n in pool  # only as quoted: arithmetic on it would overflow
    if n == n.to_integral_value() and n <= cfg.small_integer_limit:
        return True
    tolerance = Decimal(str(cfg.number_tolerance))
    half = _half_unit(n)
    for c in filter(_is_figure, pool):
        for candidate in (c, c * 100):
            if abs(n - candidate) <= max(half, tolerance * abs(candidate)):
                return True
    return False


def _number(
    obj: dict[str, Any], name: str, low: Decimal, high: Decimal, flags: list[AnswerFlag]
) -> Decimal | None:
    if name not in obj:
        flags.append(AnswerFlag("missing_field", name, f"{name} is missing"))
        return None
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        flags.append(AnswerFlag("out_of_range", name, f"{name} is {type(value).__name__}, not a number"))
        return None
    number = Decimal(value)
    if not low <= number <= high:
        flags.append(AnswerFlag("out_of_range", name, f"{name} {number} is not in [{low}, {high}]"))
        return None
    return number


def _bias(obj: dict[str, Any], flags: list[AnswerFlag]) -> Direction | None:
    if "bias" not in obj:
        flags.append(AnswerFlag("missing_field", "bias", "bias is missing"))
        return None
    found = _BIASES.get(obj["bias"]) if isinstance(obj["bias"], str) else None
    if found is None:
        flags.append(
            AnswerFlag("out_of_range", "bias", f"bias {str(obj['bias'])[:40]!r} is not long, short or flat")
        )
    return found


def _reasoning(obj: dict[str, Any], flags: list[AnswerFlag]) -> str | None:
    value = obj.get("reasoning")
    if value is None or value == "":
        flags.append(AnswerFlag("missing_field", "reasoning", "reasoning is missing or empty"))
        return None
    if not isinstance(value, str):
        flags.append(
            AnswerFlag("out_of_range", "reasoning", f"reasoning is {type(value).__name__}, not text")
        )
        return None
    return value


def _invented(reasoning: str, sources: Sequence[str], cfg: SynthesisConfig) -> list[AnswerFlag]:
    pool = sorted({n for text in sources for n in numbers_in(text)})
    where = "the context" if len(sources) == 1 else "the context or the tool results"
    invented = []
    for n in dict.fromkeys(numbers_in(reasoning)):
        if not grounded(n, pool, cfg):
            invented.append(AnswerFlag("invented_number", "reasoning", f"{n} appears nowhere in {where}"))
    return invented


def _contradiction(bias: Direction | None, reasoning: str | None, signal: Direction) -> list[AnswerFlag]:
    if bias is None or bias is not _OPPOSITE.get(signal):
        return []
    if reasoning is not None and _MARKERS.search(reasoning):
        return []
    detail = f"bias {bias.value} contradicts the {signal.value} signal with no stated reason"
    return [AnswerFlag("contradicting_direction", "bias", detail)]


def _load(text: str) -> dict[str, Any] | None:
    try:
        obj = loads_json(text, "content", parse_float=Decimal)
    except InvalidArgument:  # not JSON, or nested past the bound (measured before it is parsed)
        return None
    return obj if isinstance(obj, dict) else None


def check_answer(
    text: str,
    request_json: str,
    signal: Direction,
    cfg: SynthesisConfig,
    tool_results: Sequence[str] = (),
) -> ParsedAnswer:
    """The answer parsed, with its flags; its numbers are grounded on the request and on the
    results of the tools the model called."""
    obj = _load(text)
    if obj is None:
        return ParsedAnswer(
            None, None, None, None, (AnswerFlag("invalid_json", "", "the answer is not a JSON object"),)
        )
    flags: list[AnswerFlag] = []
    bias = _bias(obj, flags)
    confidence = _number(obj, "confidence", Decimal(0), Decimal(1), flags)
    multiplier = _number(obj, "size_multiplier", Decimal(0), Decimal(2), flags)
    reasoning = _reasoning(obj, flags)
    extra = sorted(set(obj) - set(ANSWER_FIELDS))
    if extra:
        flags.append(
            AnswerFlag("unexpected_field", "", f"fields not in the schema: {', '.join(extra)[:200]}")
        )
    if reasoning is not None:
        flags += _invented(reasoning, (request_json, *tool_results), cfg)
    flags += _contradiction(bias, reasoning, signal)
    conf = None if confidence is None else float(confidence)
    return ParsedAnswer(bias, conf, multiplier, reasoning, tuple(flags))
