"""Values a fuzzed request draws often, by its field's name: the mesh's real ones (a venue it
serves, a symbol that venue lists, a patch the detector holds) and the known bad ones (a venue
nobody serves, a symbol no venue lists, text PostgreSQL cannot store, a lone surrogate, a very
long string, the ends of int64, decimals that are not numbers).

Plain random protobuf almost never names a real venue, so without the pools a request stops at
the first lookup; with them it reaches the work behind it (a follower started, a row stored).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "LONE_SURROGATE",
    "NESTED_JSON",
    "NESTED_TOML",
    "SURROGATE_MARK",
    "Pools",
    "hostile_text",
    "with_lone_surrogates",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# protobuf refuses to serialise a lone surrogate, and the wire allows one only as bytes that are
# not UTF-8: a string holds this mark (3 bytes in UTF-8, like a surrogate's), and the serialised
# request gets the surrogate's bytes in its place (with_lone_surrogates).
SURROGATE_MARK = "\ue000"
LONE_SURROGATE = "\ud800"
_MARK_BYTES = SURROGATE_MARK.encode()
_SURROGATE_BYTES = LONE_SURROGATE.encode("utf-8", "surrogatepass")

UNKNOWN_VENUES = ("nope", "DOGE", "sim2", "SIM", "sim ", "sim\x00", "sim/../sim", "x" * 300)
UNKNOWN_SYMBOLS = (
    "DOGE/USDT",
    "NOPE/USDT",
    "BTC/USDT\x00",
    "btc/usdt",
    "BTCUSDT",
    "BTC/USDT:USDT",
    "/",
    "A/B" * 50,
)
_HOSTILE: tuple[str, ...] = (
    "\x00",
    "a\x00b",
    "\x00" * 64,
    SURROGATE_MARK,
    f"a{SURROGATE_MARK}b",
    "\x7f\x1b[2J",
    "\u202e\ufeff",
    "\U0001f600" * 8,
    "\uffff",
    "%s%n%x",
    "'; DROP TABLE patches; --",
    "line\nbreak",
    "",
    " ",
    "x" * 10_000,
    "y" * 100_000,
)
# Documents nested thousands deep, as TOML and as JSON: each was a RecursionError (HTTP 500,
# INTERNAL, a stopped process) where a parser met it (issue 57, items 6, 7, 12). Any string
# field may hold one; the fields that are TOML or JSON parse it (strategy files, policy sets).
NESTED_TOML = (
    "x = " + "[" * 3000 + "]" * 3000,
    "x = " + "{a = " * 2000 + "1" + "}" * 2000,
    ".".join(["k"] * 3000) + " = 1",
)
NESTED_JSON = ("[" * 4000, '{"a": ' * 2000 + "1" + "}" * 2000, '{"key": ' + "[" * 3000 + "]" * 3000 + "}")
_HOSTILE += NESTED_TOML + NESTED_JSON
DECIMALS = (
    "NaN", "nan", "sNaN", "-NaN", "Infinity", "-Infinity", "inf", "-1e30", "1e30", "1E+400", "1e-400",
    "-0", "0", "-1", "1", "0.00000001", "0.01", "0.5", "65000.5", "1_000", " 1", "0x10", "1e", "",
)  # fmt: skip
# Decimal strings on the wire, by field name (every request's, from the contracts).
DECIMAL_FIELDS = frozenset({
    "conviction", "entry_price", "price", "risk_amount", "score", "size", "stop_loss", "take_profit",
    "threshold", "trigger_price", "weight", "max_notional_share", "starting_equity",
    "order_latency_ms", "report_latency_ms", "sample_s",
})  # fmt: skip
# Ids that are well formed and name nothing: NOT_FOUND paths.
UNKNOWN_IDS = ("0190a0b0-0000-7000-8000-000000000000", "00000000-0000-0000-0000-000000000000", "1", "-1")
# Times in text, as the MCP tools take them.
TIME_TEXTS = (
    "7d", "1h", "0s", "-1d", "1000000d", "2024-01-01", "1970-01-01T00:00:00Z", "2070-01-01", "9999-12-31",
    str(INT64_MAX), str(INT64_MIN), "0", "now", "NaN", "yesterday",
)  # fmt: skip


_SINGULAR = {"strategies": "strategy", "symbols": "symbol", "venues": "venue"}


def _times() -> tuple[int, ...]:
    now = time.time_ns()
    hour = 3600 * 10**9
    return (0, 1, -1, INT64_MAX, INT64_MIN, now, now - hour, now - 24 * hour, now + 24 * hour, now - 10**9)


def hostile_text() -> st.SearchStrategy[str]:
    return st.sampled_from(_HOSTILE)


def with_lone_surrogates(body: bytes) -> bytes:
    """The serialised request with each surrogate mark turned into a lone surrogate's bytes."""
    return body.replace(_MARK_BYTES, _SURROGATE_BYTES)


# How many times an array argument may name one value (within the tools' bounds or past them).
REPEATED_ITEMS = 5_000


def _json_text(value: str) -> str:
    """JSON can carry a lone surrogate as an escape: the real one, not the mark."""
    return value.replace(SURROGATE_MARK, LONE_SURROGATE)


@dataclass(frozen=True)
class Pools:
    """The mesh's real values; field names in `ids` (patch_id, strategy_id, ...) draw from theirs;
    `seeds`: good requests by message type, serialised (tests.integration.fuzz_seeds)."""

    venues: Sequence[str] = ("sim",)
    symbols: Sequence[str] = ("BTC/USDT", "ETH/USDT")
    ids: Mapping[str, Sequence[str]] = field(default_factory=dict)
    seeds: Mapping[str, Sequence[bytes]] = field(default_factory=dict)

    def string(self, name: str, good: bool = False, bad: bool = False) -> st.SearchStrategy[str] | None:
        """What a string field of this name draws: real values and bad ones, or with `good` only
        real ones, with `bad` only bad ones (None: nothing special, any text)."""
        real = self._real(name)
        if real is None:
            return None
        wrong = st.one_of(st.sampled_from(list(self._bad(name))), hostile_text())
        if bad or not real:
            return wrong
        right = st.sampled_from(list(real))
        # Real values half the time: they are what gets a request past its first lookup.
        return right if good else st.one_of(right, right, wrong)

    @staticmethod
    def _bad(name: str) -> Sequence[str]:
        if name in DECIMAL_FIELDS:
            return DECIMALS
        if name.startswith("venue") or name == "target":
            return UNKNOWN_VENUES
        if name.startswith("symbol"):
            return UNKNOWN_SYMBOLS
        return UNKNOWN_IDS

    def _real(self, name: str) -> Sequence[str] | None:
        if name in self.ids:
            return self.ids[name]
        if name in DECIMAL_FIELDS:
            return ("0.01", "1", "0.001", "100", "65000")
        if name.startswith("venue") or name == "target":
            return self.venues
        if name.startswith("symbol"):
            return self.symbols
        return None

    def integer(self, name: str, low: int, high: int, good: bool = False) -> st.SearchStrategy[int] | None:
        """Times (fields named *_ns) draw times near now, and unless `good` the ends of int64 and 0."""
        if not name.endswith("_ns"):
            return None
        now = time.time_ns()
        times = [now - 3600 * 10**9, now - 60 * 10**9, now] if good else _times()
        return st.sampled_from([t for t in times if low <= t <= high])

    # ---------------------------------------------------------------- MCP tool arguments

    def json_argument(self, name: str, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        """A value for the tool argument `name` of this JSON schema: of its type, often a pooled
        one, sometimes of another type altogether."""
        own = self._json_of(name, schema)
        other = st.sampled_from([None, True, -1, 1.5, "sim", [], {}, [None], {"a": 1}])
        return st.one_of(own, own, own, other)

    def _json_of(self, name: str, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        choices = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
        kinds = [self._json_kind(name, choice) for choice in choices] or [st.none()]
        return st.one_of(*kinds)

    def _json_kind(self, name: str, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        kind = schema.get("type")
        if "enum" in schema:
            return st.one_of(st.sampled_from(list(schema["enum"])), hostile_text().map(_json_text))
        if kind == "array":
            item = self._json_of(_SINGULAR.get(name, name), schema.get("items", {}))
            # Also one value thousands of times (a strategy named 10,000 times kept the backtest
            # hub silent for minutes: issue 57, item 8); a long value once (the body's bound).
            repeated = item.map(lambda v: [v] * REPEATED_ITEMS if len(repr(v)) <= 64 else [v])
            return st.one_of(st.lists(item, max_size=4), st.lists(item, max_size=4), repeated)
        if kind == "integer":
            return st.sampled_from([0, 1, -1, 5, 20, 500, 10**6, INT64_MAX, INT64_MIN, 2**70])
        if kind == "number":
            return st.sampled_from([0, 0.1, -1, 1.5, 5, 60, 1e308, -1e30])
        if kind == "boolean":
            return st.booleans()
        return self._json_string(name)

    def _json_string(self, name: str) -> st.SearchStrategy[str]:
        pooled = self.string(name)
        if pooled is None:
            pooled = self.string(f"{name}_id")
        if name in ("start", "end", "since", "until"):
            pooled = st.one_of(st.sampled_from(TIME_TEXTS), hostile_text())
        generic = st.one_of(hostile_text(), st.text(max_size=20))
        return (st.one_of(pooled, pooled, generic) if pooled is not None else generic).map(_json_text)
