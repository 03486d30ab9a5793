"""Configuration of a paper venue (`trademesh venue NAME --paper --paper-config FILE`): the
account it starts with and how its orders meet the venue's book. One TOML file that may not hold
unknown keys; every key optional:

    latency_ms = 25              # an order's (or cancel's) way to the venue and back
    maker_fee_rate = "0.001"     # default: the venue's own rate of each instrument
    taker_fee_rate = "0.001"
    funding_rate = "0.0001"      # perpetuals: paid by longs to shorts at each funding time
    funding_interval_s = 28800
    fee_asset = "received"       # default: the venue's own rule ("quote" or "received")
    leverage = "1"               # perpetuals: each one's leverage at the start (SetLeverage changes it)
    margin_mode = "cross"        # or "isolated"
    liquidation_fee_rate = "0.002"
    [balances]
    USDT = "100000"

The matching model: docs/paper.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from trademesh.core.domain.matching.config import parse_balances
from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.matching.margin_account import MarginTerms
from trademesh.core.domain.model import MarginMode
from trademesh.core.platform.config.file import read_toml
from trademesh.core.platform.config.schema import Parse, Within, load, read_value

__all__ = ["PaperConfig", "default_paper_balances", "load_paper_config", "paper_margin"]

D = Decimal
_MAKER = Annotated[Decimal, Within(D("-0.01"), D("0.1"))]
_TAKER = Annotated[Decimal, Within(D(0), D("0.1"))]


def default_paper_balances() -> tuple[tuple[str, Decimal], ...]:
    return (("USDT", D("100000")), ("USD", D("100000")), ("BTC", D("1")), ("ETH", D("10")))


def _maker_rate(raw: Any, path: str) -> Decimal:
    value: Decimal = read_value(_MAKER, raw, path)
    return value


def _taker_rate(raw: Any, path: str) -> Decimal:
    value: Decimal = read_value(_TAKER, raw, path)
    return value


@dataclass(frozen=True, kw_only=True)
class PaperConfig:
    # From PlaceOrder (or CancelOrder) to the order's reaching the venue's book.
    latency_ms: Annotated[int, Within(0, 60_000)] = 25
    # None: the venue's own rate (its instruments'), else the sim's default.
    maker_fee_rate: Annotated[Decimal | None, Parse(_maker_rate)] = None
    taker_fee_rate: Annotated[Decimal | None, Parse(_taker_rate)] = None
    funding_rate: Annotated[Decimal, Within(D("-0.01"), D("0.01"))] = Decimal("0.0001")
    funding_interval_s: Annotated[int, Within(1, 86_400)] = 28_800
    closed_orders_kept: Annotated[int, Within(100, 1_000_000)] = 10_000
    price_band_ratio: Annotated[Decimal, Within(D("1.01"), D(1000))] = Decimal(5)
    # None: the asset the venue's exchange charges a spot fee in (its spec.py); set, that rule
    # instead (an account paying its fees apart, e.g. in BNB at Binance, holds its whole buys).
    fee_asset: FeeAsset | None = None
    balances: Annotated[tuple[tuple[str, Decimal], ...], Parse(parse_balances)] = field(
        default_factory=default_paper_balances
    )
    # Perpetuals are margined and liquidated as the sim's are (docs/derivatives.md, "Margin and
    # liquidation"), with the default brackets: 1x cross keeps every position fully funded.
    leverage: Annotated[Decimal, Within(1, 125)] = Decimal(1)
    margin_mode: MarginMode = MarginMode.CROSS
    liquidation_fee_rate: Annotated[Decimal, Within(0, D("0.1"))] = Decimal("0.002")


def paper_margin(config: PaperConfig) -> MarginTerms:
    """How the paper venue's engine margins its perpetuals."""
    return MarginTerms(config.leverage, config.margin_mode, config.liquidation_fee_rate)


def load_paper_config(path: Path | None) -> PaperConfig:
    if path is None:
        return PaperConfig()
    return load(PaperConfig, read_toml(path, "paper-config"), str(path))
