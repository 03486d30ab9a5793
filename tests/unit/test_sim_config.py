"""Every number of the sim config has a range: its bounds load, one step outside is refused by key.

(Issue 12, item 14.) The ranges are the table in trademesh/venues/sim/config.py's docstring.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.sim.config import SimConfig, load_config

# Every refusal ends naming the file.
IN_FILE = r" \(in \S*sim\.toml\)$"
SYMBOL = '[[symbols]]\nsymbol = "BTC/USDT"\nstart_price = "65000"\ntick_size = "0.01"\nlot_size = "0.001"\n'

# (top-level key, lowest accepted, highest accepted, a value below, a value above), as TOML text
TOP: list[tuple[str, str, str, str, str]] = [
    ("seed", "0", str(2**63 - 1), "-1", str(2**63)),
    ("tick_interval_ms", "1", "1000", "0", "1001"),
    ("ticker_interval_ms", "10", "60000", "9", "60001"),
    ("candle_interval_ms", "100", "60000", "99", "60001"),
    ("maker_fee_rate", '"-0.01"', '"0.1"', '"-0.011"', '"0.11"'),
    ("taker_fee_rate", '"0"', '"0.1"', '"-0.001"', '"0.101"'),
    ("closed_orders_kept", "100", "1000000", "99", "1000001"),
    ("price_band_ratio", '"1.01"', '"1000"', '"1.0"', '"1000.5"'),
]
# The same for the keys of one [[symbols]] table.
PER_SYMBOL: list[tuple[str, str, str, str, str]] = [
    ("min_size", '"0"', '"1000000000000"', '"-0.001"', '"1000000000001"'),
    ("min_notional", '"0"', '"1000000000000"', '"-1"', '"1000000000001"'),
    ("volatility_per_sqrt_s", "0", "0.01", "-0.0001", "0.0101"),
    ("trades_per_s", "0", "1000", "-1", "1000.5"),
    ("book_updates_per_s", "0", "10000", "-1", "10001"),
    ("book_depth_levels", "1", "1000", "0", "1001"),
    ("level_spacing_ticks", "1", "1000000", "0", "1000001"),
    ("maker_size_lots", "1", "1000000000000", "0", "1000000000001"),
    ("taker_size_lots", "1", "1000000000000", "-3", "1000000000001"),
]


def _load(tmp_path: Path, text: str) -> SimConfig:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize(("key", "low", "high", "below", "above"), TOP, ids=[t[0] for t in TOP])
def test_a_top_level_number_is_taken_at_its_bounds_and_refused_outside(
    tmp_path: Path, key: str, low: str, high: str, below: str, above: str
) -> None:
    for good in (low, high):
        assert str(getattr(_load(tmp_path, f"{key} = {good}\n"), key)) == good.strip('"')
    for bad in (below, above):
        with pytest.raises(InvalidArgument, match=rf"^{key}: must be between .* got ") as error:
            _load(tmp_path, f"{key} = {bad}\n")
        assert [v.field for v in error.value.violations] == [key]


@pytest.mark.parametrize(("key", "low", "high", "below", "above"), PER_SYMBOL, ids=[t[0] for t in PER_SYMBOL])
def test_a_symbol_number_is_taken_at_its_bounds_and_refused_outside(
    tmp_path: Path, key: str, low: str, high: str, below: str, above: str
) -> None:
    for good in (low, high):
        (symbol,) = _load(tmp_path, SYMBOL + f"{key} = {good}\n").symbols
        assert Decimal(str(getattr(symbol, key))) == Decimal(good.strip('"'))
    for bad in (below, above):
        with pytest.raises(InvalidArgument, match=rf"^symbols\[0\]\.{key}: must be between .* got "):
            _load(tmp_path, SYMBOL + f"{key} = {bad}\n")


@pytest.mark.parametrize("key", ["volatility_per_sqrt_s", "trades_per_s", "book_updates_per_s"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_rate_that_is_not_finite_is_refused(tmp_path: Path, key: str, value: str) -> None:
    said = rf"^symbols\[0\]\.{key}: -?(nan|inf) is not a finite number{IN_FILE}"
    with pytest.raises(InvalidArgument, match=said):
        _load(tmp_path, SYMBOL + f"{key} = {value}\n")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('start_price = "0"', r"symbols\[0\]\.start_price: must be more than 0"),
        (
            'start_price = "1000000000001"\ntick_size = "1"',
            r"symbols\[0\]\.start_price: must be more than 0 ",
        ),
        ('tick_size = "0"', r"symbols\[0\]\.tick_size: must be more than 0"),
        ('tick_size = "0.000000000001"', r"symbols\[0\]\.tick_size: too fine for start_price 65000: "),
        ('lot_size = "0"', r"symbols\[0\]\.lot_size: must be more than 0"),
        ('lot_size = "1000000001"', r"symbols\[0\]\.lot_size: must be more than 0 and at most 1000000000,"),
        ('symbol = "BTC/BTC"', r"symbols\[0\]\.symbol: 'BTC/BTC': the sim trades spot"),
        ('symbol = "btc/usdt"', r"symbols\[0\]\.symbol: 'btc/usdt': the sim trades spot"),
        ('symbol = "BTC/USDT:ETH"', r"symbols\[0\]\.symbol: 'BTC/USDT:ETH': the sim's perpetuals settle in"),
        ('symbol = "BTC/USDT:"', r"symbols\[0\]\.symbol: 'BTC/USDT:': the sim's perpetuals settle in"),
        ("symbol = 5", r"symbols\[0\]\.symbol: 5 is not a string"),
        ("start_price = true", r"symbols\[0\]\.start_price: True is not a decimal number"),
        ('start_price = "nan"', r"symbols\[0\]\.start_price: 'nan' is not a finite decimal number"),
        ('start_price = "1e-50"', r"symbols\[0\]\.start_price: '1e-50' has more than 38 digits"),
    ],
)
def test_a_bad_symbol_value_is_refused_naming_its_key(tmp_path: Path, text: str, says: str) -> None:
    keys = tuple(line.split(" ", 1)[0] + " " for line in text.splitlines())
    lines = [line for line in SYMBOL.splitlines() if not line.startswith(keys)]
    with pytest.raises(InvalidArgument, match=says):
        _load(tmp_path, "\n".join(lines) + "\n" + text + "\n")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("symbols = []", r"^symbols: must list between 1 and 100, got 0" + IN_FILE),
        ("symbols = 3", r"^symbols: 3 is not an array of tables \(\[\[symbols\]\]\)" + IN_FILE),
        ("symbols = [1]", r"^symbols\[0\]: 1 is not a table" + IN_FILE),
        (SYMBOL + SYMBOL, r"^symbols\[1\]\.symbol: 'BTC/USDT' is listed twice" + IN_FILE),
        ('[[symbols]]\nsymbol = "BTC/USDT"\ntick_size = "1"\nlot_size = "1"',
         r"^symbols\[0\]\.start_price: is required" + IN_FILE),
        ("balances = 5", r"^balances: 5 is not a table of ASSET = amount"),
        ('[balances]\nUSDT = "-1"',
         r"^balances\.USDT: must be between 0 and 1000000000000000000, got -1" + IN_FILE),
        ('[balances]\nUSDT = "1000000000000000001"', r"^balances\.USDT: must be between 0 and "),
        ('[balances]\n"US DT" = "1"',
         r"^balances\.US DT: 'US DT' is not an asset \(1-16 of A-Z 0-9\)" + IN_FILE),
        ("[balances]\nUSDT = [1]", r"^balances\.USDT: \[1\] is not a decimal number" + IN_FILE),
        ("seed = 1.5", r"^seed: 1\.5 is not a whole number" + IN_FILE),
        ("colour = 1", r"^colour: unknown key; known: maker_fee_rate, taker_fee_rate, .*, seed, "
         r"tick_interval_ms, .*history_s" + IN_FILE),
        (SYMBOL + "colour = 1", r"^symbols\[0\]\.colour: unknown key; known: symbol, tick_size, "
         r".*start_price, .*taker_size_lots" + IN_FILE),
    ],
)  # fmt: skip
def test_a_bad_structure_is_refused_naming_its_key(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(InvalidArgument, match=says):
        _load(tmp_path, text + "\n")


def test_the_defaults_are_inside_every_range(tmp_path: Path) -> None:
    defaults = SimConfig()
    written = "".join(
        f"{key} = {getattr(defaults, key)!r}\n".replace("Decimal('", '"').replace("')", '"')
        for key, *_ in TOP
    )
    assert _load(tmp_path, written) == defaults
