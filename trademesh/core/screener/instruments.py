"""What a screen's universe needs to know of an instrument (its kind and quote asset), read from
its canonical (ccxt unified) symbol: the bus carries no instrument list, and the symbol says it.

BASE/QUOTE is spot; BASE/QUOTE:SETTLE a perpetual; BASE/QUOTE:SETTLE-YYMMDD a future;
BASE/QUOTE:SETTLE-YYMMDD-STRIKE-C|P an option.
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.domain.model import InstrumentKind

__all__ = ["SymbolFacts", "symbol_facts"]


@dataclass(frozen=True, slots=True)
class SymbolFacts:
    kind: InstrumentKind
    quote_asset: str


def symbol_facts(symbol: str) -> SymbolFacts:
    pair, _, settle = symbol.partition(":")
    quote = pair.partition("/")[2]
    if not settle:
        return SymbolFacts(InstrumentKind.SPOT, quote)
    parts = settle.split("-")
    if len(parts) == 1:
        return SymbolFacts(InstrumentKind.PERPETUAL, quote)
    if len(parts) >= 4 and parts[-1] in ("C", "P"):
        return SymbolFacts(InstrumentKind.OPTION, quote)
    return SymbolFacts(InstrumentKind.FUTURE, quote)
