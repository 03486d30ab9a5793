"""The advisor core's settings: frozen, typed, checked when made (InvalidArgument names the
field, e.g. "validation.max_spread_ratio"). Units are in the names; ratios are fractions
(0.004 is 0.4%)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from decimal import Decimal

from trademesh.core.domain.model import TimeInForce
from trademesh.core.domain.regime import ClassifierConfig
from trademesh.core.platform.config.schema.words import out_of_range, range_problem
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

__all__ = [
    "AdvisorConfig",
    "ConvictionConfig",
    "EntryMode",
    "IntentConfig",
    "MonitorConfig",
    "QualityConfig",
    "RegimeConfig",
    "RulesConfig",
    "SizingConfig",
    "SynthesisConfig",
    "ValidationConfig",
]

Bound = tuple[float | Decimal, float | Decimal]


def _violations(prefix: str, obj: object, bounds: dict[str, Bound]) -> list[FieldViolation]:
    # Worded as every config file's ranges are (trademesh.core.platform.config.schema.words).
    bad = []
    for name, (low, high) in bounds.items():
        problem = range_problem(getattr(obj, name), low, high)
        if problem is not None:
            bad.append(FieldViolation(f"{prefix}.{name}", problem))
    return bad


def _check(prefix: str, obj: object, bounds: dict[str, Bound]) -> None:
    bad = _violations(prefix, obj, bounds)
    if bad:
        raise InvalidArgument(bad)


@dataclass(frozen=True)
class QualityConfig:
    """Stage 2: the score starts at 1 and each finding takes its penalty off (docs/advisor.md)."""

    threshold: float = 0.6
    fresh_ms: int = 2_000  # a last event younger than this costs nothing
    stale_ms: int = 10_000  # ... as old as this costs the whole staleness_penalty
    staleness_penalty: float = 0.6
    open_gap_penalty: float = 0.5  # per open gap
    repaired_bar_penalty: float = 0.05  # per repaired bar ...
    repaired_penalty_cap: float = 0.25  # ... at most this in all
    no_book_penalty: float = 0.5
    crossed_penalty: float = 1.0
    thin_book_quote: Decimal = Decimal(1000)  # either best level worth less than this is thin
    thin_penalty: float = 0.3
    wide_spread_ratio: Decimal = Decimal("0.004")
    wide_penalty: float = 0.3
    reconnect_penalty: float = 0.1  # per reconnect or resync ...
    venue_penalty_cap: float = 0.3  # ... at most this in all

    def __post_init__(self) -> None:
        penalties: dict[str, Bound] = {
            name: (0.0, 1.0)
            for name in (
                "threshold", "staleness_penalty", "open_gap_penalty", "repaired_bar_penalty",
                "repaired_penalty_cap", "no_book_penalty", "crossed_penalty", "thin_penalty",
                "wide_penalty", "reconnect_penalty", "venue_penalty_cap",
            )
        }  # fmt: skip
        bounds: dict[str, Bound] = {
            **penalties,
            "fresh_ms": (0, 86_400_000),
            "stale_ms": (self.fresh_ms + 1, 86_400_000),
            "thin_book_quote": (Decimal(0), Decimal(10**15)),
            "wide_spread_ratio": (Decimal(0), Decimal(1)),
        }
        _check("quality", self, bounds)


@dataclass(frozen=True)
class RulesConfig:
    """Stage 3's own rules (independent of the detector's): weights and thresholds."""

    trend_weight: float = 0.3
    momentum_weight: float = 0.25
    extension_weight: float = 0.2
    volume_weight: float = 0.1
    volatility_weight: float = 0.15
    overbought_rsi: float = 0.7  # RSI as a fraction: a long above this is overextended
    oversold_rsi: float = 0.3
    max_volatility: float = 0.003  # per-bar standard deviation of log returns

    def __post_init__(self) -> None:
        bounds: dict[str, Bound] = {
            name: (0.0, 1.0)
            for name in (
                "trend_weight", "momentum_weight", "extension_weight", "volume_weight",
                "volatility_weight", "overbought_rsi", "oversold_rsi", "max_volatility",
            )
        }  # fmt: skip
        _check("rules", self, bounds)
        if self.weights_total() <= 0:
            raise InvalidArgument.field("rules", "at least one rule weight must be above 0")

    def weights_total(self) -> float:
        return (
            self.trend_weight
            + self.momentum_weight
            + self.extension_weight
            + self.volume_weight
            + self.volatility_weight
        )


@dataclass(frozen=True)
class ConvictionConfig:
    """Stage 4's weights (docs/advisor.md, "Conviction")."""

    detector_weight: float = 0.4
    model_weight: float = 0.35
    rule_weight: float = 0.25

    def __post_init__(self) -> None:
        _check("conviction", self, {f.name: (0.0, 1.0) for f in fields(self)})
        if self.detector_weight <= 0:
            raise InvalidArgument.field("conviction.detector_weight", "must be above 0")


@dataclass(frozen=True)
class RegimeConfig:
    """Stage 5's regime: Overwatch's classifier (trademesh.core.domain.regime, its default config, the
    one Overwatch runs) over the context's last `window_bars` bars, from an anchor that moves every
    `restart_bars` bars' time (docs/advisor.md, "Regime and calibration"). The classifier's own
    thresholds are not here: one config for every reader, so the advisor and Overwatch read the
    same regime of the same bars."""

    window_bars: int = 700  # the context's last bars the regime is read from (at most) ...
    restart_bars: int = 100  # ... from the first at or after a multiple of this many bars' time

    def __post_init__(self) -> None:
        _check("regime", self, {"window_bars": (200, 900), "restart_bars": (1, 500)})
        warmup = ClassifierConfig().warmup_bars
        if self.window_bars - self.restart_bars < warmup:
            raise InvalidArgument.field(
                "regime.restart_bars",
                f"must leave at least {warmup} bars (the classifier's warm-up) of regime.window_bars "
                f"({self.window_bars}), not {self.window_bars - self.restart_bars}",
            )


@dataclass(frozen=True)
class SynthesisConfig:
    llm_enabled: bool = True
    llm_weight: float = 0.3  # the LLM's share of the final conviction (docs/advisor.md)
    deadline_ms: int = 5_000  # a decision waits this long for the answer, then goes deterministic
    max_pending: int = 1_000  # decisions waiting at once; past it, deterministic at once
    bars_in_request: int = 20
    # A number in the reasoning is grounded when it is within this relative distance of one
    # in the request (or its last digit's rounding); integers up to small_integer_limit pass.
    number_tolerance: float = 0.001
    small_integer_limit: int = 10
    # Checks whose flag discards the answer; any other flag multiplies its weight by downweight.
    discard: frozenset[str] = frozenset(
        {"invalid_json", "missing_field", "out_of_range", "contradicting_direction"}
    )
    downweight: float = 0.5

    def __post_init__(self) -> None:
        bounds: dict[str, Bound] = {
            "llm_weight": (0.0, 1.0),
            "deadline_ms": (1, 600_000),
            "max_pending": (0, 1_000_000),
            "bars_in_request": (0, 500),
            "number_tolerance": (0.0, 0.5),
            "small_integer_limit": (0, 1_000_000),
            "downweight": (0.0, 1.0),
        }
        _check("synthesis", self, bounds)


@dataclass(frozen=True)
class ValidationConfig:
    max_spread_ratio: Decimal = Decimal("0.004")
    min_risk_reward: Decimal = Decimal("1.2")
    # The final conviction is a probability that the direction is right: below even, no trade.
    min_conviction: float = 0.5
    stop_atr: Decimal = Decimal("1.5")  # the stop this many ATRs from the entry
    target_atr: Decimal = Decimal("2.5")  # the take-profit this many ATRs from it ...
    cap_target_at_swing: bool = True  # ... but no further than the swing high (low) beyond it
    atr_bars: int = 14
    swing_bars: int = 20
    # Every side's fee rate, whatever the venue says; None: the venue's own rates (its instrument
    # facts), or 0.1% a side where it states none (engine/fees.py). 0 counts no fees.
    fee_rate: Decimal | None = None
    # A stop or target must lie further from the entry than its round trip's fees and this many
    # ticks; nearer, the trade is blocked (its bars' ATR is too small for the venue's costs).
    min_distance_ticks: int = 4

    def __post_init__(self) -> None:
        bounds: dict[str, Bound] = {
            "max_spread_ratio": (Decimal(0), Decimal(1)),
            "min_risk_reward": (Decimal(0), Decimal(100)),
            "min_conviction": (0.0, 1.0),
            "stop_atr": (Decimal("0.01"), Decimal(100)),
            "target_atr": (Decimal("0.01"), Decimal(100)),
            "atr_bars": (1, 1000),
            "swing_bars": (1, 1000),
            "min_distance_ticks": (0, 10_000),
        }
        if self.fee_rate is not None:
            bounds["fee_rate"] = (Decimal(0), Decimal("0.1"))
        _check("validation", self, bounds)


@dataclass(frozen=True)
class SizingConfig:
    risk_per_trade: Decimal = Decimal("0.005")  # the share of equity lost if the stop is hit
    max_notional_share: Decimal = Decimal("0.25")  # the cap: at most this share of equity

    def __post_init__(self) -> None:
        bad = _violations("sizing", self, {"risk_per_trade": (Decimal(0), Decimal("0.1"))})
        if not 0 < self.max_notional_share <= 1:  # a share of equity: above 0, at most all of it
            reason = out_of_range(self.max_notional_share, 0, 1, above=True)
            bad.append(FieldViolation("sizing.max_notional_share", reason))
        if bad:
            raise InvalidArgument(bad)


class EntryMode(enum.Enum):
    MARKET = "market"
    LIMIT_JOIN = "limit_join"  # a limit at our side's best price (passive)
    LIMIT_CROSS = "limit_cross"  # a limit at the other side's best price (fills now, bounded)


@dataclass(frozen=True)
class IntentConfig:
    entry: EntryMode = EntryMode.LIMIT_CROSS
    time_in_force: TimeInForce = TimeInForce.GTC
    ttl_ms: int = 60_000  # the intent expires this long after the decision
    # Derivatives: the leverage each entry asks to be held at (Intent.leverage: the inspector
    # checks it against its leverage policies and sets it at the venue before the order); None:
    # the venue's setting in force. Ignored for spot (docs/inspector-orders.md, "Leverage, margin and
    # liquidation").
    leverage: Decimal | None = None

    def __post_init__(self) -> None:
        bad = _violations("intent", self, {"ttl_ms": (1, 86_400_000)})
        if self.leverage is not None and range_problem(self.leverage, 0, 1000, above=True) is not None:
            bad.append(FieldViolation("intent.leverage", out_of_range(self.leverage, 0, 1000, above=True)))
        if bad:
            raise InvalidArgument(bad)


@dataclass(frozen=True)
class MonitorConfig:
    drift_window: int = 50  # feature vectors per market in the drift window
    drift_limit: float = 1.0  # |live mean - training mean| / training std that raises an alert
    allocation_every: int = 20  # a portfolio allocation recommendation every N decisions

    def __post_init__(self) -> None:
        _check(
            "monitor",
            self,
            {"drift_window": (2, 100_000), "drift_limit": (0.0, 100.0), "allocation_every": (1, 1_000_000)},
        )


@dataclass(frozen=True)
class AdvisorConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    conviction: ConvictionConfig = field(default_factory=ConvictionConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    sizing: SizingConfig = field(default_factory=SizingConfig)
    intent: IntentConfig = field(default_factory=IntentConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
