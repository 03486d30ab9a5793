"""The live venues' margin rules: ccxt's position structures as PositionMargin (its unified
fields, the exchange's raw ones where ccxt leaves them empty), liquidation flags, the balances'
position margin, and SetLeverage's refusals named as ours (the exchange's answers as ccxt raises
them; ccxt's client is stood in for by a small object answering as ccxt does)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import ccxt.pro
import pytest

from trademesh.core.domain.model import MarginMode
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.venues.binanceusdm.margin import BinanceUsdmMargin
from trademesh.venues.deribit.margin import DeribitMargin
from trademesh.venues.live.convert import order_from_ccxt
from trademesh.venues.live.margin import LiveLeverage, margin_from_ccxt
from trademesh.venues.live.private import fill_from_ccxt
from trademesh.venues.okx_swap.margin import OkxSwapMargin

D = Decimal


async def _plain(call: Callable[[], Awaitable[Any]]) -> Any:
    return await call()


def test_binance_v2_position_risk_fills_what_ccxt_leaves_empty() -> None:
    info = {"symbol": "BTCUSDT", "positionAmt": "0.100", "markPrice": "50000.00000000", "leverage": "50",
            "marginType": "isolated", "unRealizedProfit": "-0.01000000", "liquidationPrice": "49196.88554217",
            "maintMargin": "20"}  # fmt: skip
    empty = dict.fromkeys(("markPrice", "leverage", "marginMode", "maintenanceMargin", "unrealizedPnl",
                           "liquidationPrice"))  # fmt: skip
    raw = {"info": info, **empty, "initialMargin": 100.0, "marginRatio": 0.2}
    margin = margin_from_ccxt(raw, "USDT", BinanceUsdmMargin())
    assert (margin.settle_asset, margin.mode, margin.leverage) == ("USDT", MarginMode.ISOLATED, D(50))
    assert (margin.mark_price, margin.unrealized_pnl) == (D(50000), D("-0.01"))
    assert (margin.initial_margin, margin.maintenance_margin, margin.margin_ratio) == (
        D(100),
        D(20),
        D("0.2"),
    )
    assert margin.liquidation_price == D("49196.88554217")


def test_a_liquidation_price_written_as_zero_is_none() -> None:
    raw = {"info": {"liquidationPrice": "0", "marginType": "cross"}, "liquidationPrice": None}
    assert margin_from_ccxt(raw, "USDT", BinanceUsdmMargin()).liquidation_price is None


def test_okx_and_deribit_raw_fields() -> None:
    okx = {"markPx": "50000", "lever": "2.5", "mgnMode": "cross", "imr": "40000", "mmr": "400", "upl": "-0.2",
           "liqPx": "", "mgnRatio": "250"}  # fmt: skip
    margin = margin_from_ccxt({"info": okx}, "USDT", OkxSwapMargin())
    assert (margin.leverage, margin.mode, margin.initial_margin) == (D("2.5"), MarginMode.CROSS, D(40000))
    assert margin.liquidation_price is None and margin.margin_ratio is None  # OKX's mgnRatio is not ours
    deribit = {"mark_price": 50000.0, "leverage": 47, "initial_margin": 0.42, "maintenance_margin": 0.32,
               "floating_profit_loss": -0.0002, "estimated_liquidation_price": 47247.31}  # fmt: skip
    margin = margin_from_ccxt({"info": deribit}, "BTC", DeribitMargin())
    assert (margin.mode, margin.leverage, margin.maintenance_margin) == (MarginMode.CROSS, D(47), D("0.32"))
    assert margin.liquidation_price == D("47247.31") and DeribitMargin.modes == ()


@pytest.mark.parametrize(
    ("rules", "info", "expected"),
    [
        (BinanceUsdmMargin(), {"o": "LIQUIDATION", "c": "autoclose-1596107620040000020"}, True),
        (BinanceUsdmMargin(), {"o": "MARKET", "c": "autoclose-1"}, True),
        (BinanceUsdmMargin(), {"o": "MARKET", "c": "tm123"}, False),
        (OkxSwapMargin(), {"category": "full_liquidation"}, True),
        (OkxSwapMargin(), {"category": "partial_liquidation"}, True),
        (OkxSwapMargin(), {"category": "normal"}, False),
        (DeribitMargin(), {"is_liquidation": True}, True),
        (DeribitMargin(), {"liquidation": "MT"}, True),
        (DeribitMargin(), {"is_liquidation": False}, False),
    ],
)
def test_liquidations_are_flagged(rules: Any, info: dict[str, Any], expected: bool) -> None:
    raw = {"id": "1", "symbol": "BTC/USDT:USDT", "side": "sell", "type": "market", "amount": 1, "filled": 1,
           "status": "closed", "info": info}  # fmt: skip
    order = order_from_ccxt("venue", raw, rules.liquidation)
    assert order.liquidation is expected
    fill = fill_from_ccxt({"id": "9", "price": 1, "amount": 1, "side": "sell", "info": info}, order)
    assert fill.liquidation is expected
    plain = order_from_ccxt("venue", {**raw, "info": {}}, rules.liquidation)
    assert not plain.liquidation
    assert fill_from_ccxt({"id": "9", "info": info}, plain, rules.liquidation).liquidation is expected


def test_position_margins_of_the_balances() -> None:
    binance = {"assets": [{"asset": "USDT", "positionInitialMargin": "100.00000000"},
                          {"asset": "BNB", "positionInitialMargin": "0.00000000"}]}  # fmt: skip
    assert BinanceUsdmMargin().position_margins(binance) == {"USDT": D(100)}
    okx = {"data": [{"details": [{"ccy": "USDT", "imr": "40000"}, {"ccy": "BTC", "imr": ""}]}]}
    assert OkxSwapMargin().position_margins(okx) == {"USDT": D(40000)}


class _Binance:
    """Answers as ccxt's binanceusdm does: the brackets, then the exchange's refusals."""

    id = "binanceusdm"

    def __init__(self, refusal: Exception | None = None) -> None:
        self.refusal = refusal
        self.calls: list[str] = []

    async def fetch_leverage_tiers(self, symbols: list[str]) -> dict[str, Any]:
        return {symbols[0]: [{"tier": 1, "maxLeverage": 125.0}]}

    async def set_margin_mode(self, mode: str, symbol: str) -> dict[str, Any]:
        self.calls.append(f"mode {mode}")
        if self.refusal is not None:
            raise self.refusal
        return {"code": 200}

    async def set_leverage(self, leverage: int, symbol: str) -> dict[str, Any]:
        self.calls.append(f"leverage {leverage}")
        return {"leverage": leverage}

    async def fetch_leverage(self, symbol: str) -> dict[str, Any]:
        return {"marginMode": "isolated", "longLeverage": 50}


async def test_binance_refuses_above_its_bracket_and_a_fraction_before_asking() -> None:
    exchange = _Binance()
    for wanted in ("126", "2.5"):
        with pytest.raises(InvalidArgument) as refused:
            await BinanceUsdmMargin().set_leverage(exchange, "BTC/USDT:USDT", D(wanted), None, _plain)
        assert refused.value.violations[0].field == "leverage" and "125" in str(refused.value)
    assert exchange.calls == []
    setting = await BinanceUsdmMargin().set_leverage(
        exchange, "BTC/USDT:USDT", D(50), MarginMode.ISOLATED, _plain
    )
    assert (setting.leverage, setting.mode, setting.max_leverage) == (D(50), MarginMode.ISOLATED, D(125))
    assert exchange.calls == ["mode isolated", "leverage 50"]


async def test_binance_mode_refusals_and_no_change() -> None:
    blocked = _Binance(ccxt.BadRequest('binanceusdm {"code":-4048,"msg":"Margin type cannot be changed"}'))
    with pytest.raises(FailedPrecondition):
        await BinanceUsdmMargin().set_leverage(blocked, "BTC/USDT:USDT", D(5), MarginMode.CROSS, _plain)
    same = _Binance(ccxt.MarginModeAlreadySet("binanceusdm No need to change margin type."))
    setting = await BinanceUsdmMargin().set_leverage(same, "BTC/USDT:USDT", D(5), MarginMode.CROSS, _plain)
    assert same.calls == ["mode cross", "leverage 5"] and setting.leverage == D(50)


async def test_the_exchanges_bad_request_names_leverage() -> None:
    class Rules(BinanceUsdmMargin):
        async def set_leverage(self, exchange: Any, symbol: str, leverage: D, mode: Any, call: Any) -> Any:
            async def refused() -> Any:
                raise ccxt.BadRequest(
                    'binanceusdm {"code":-4028,"msg":"Leverage 126 is not valid"}?signature=abc'
                )

            return await call(refused)

    leverage = LiveLeverage("binanceusdm", object(), Rules(), _plain, ["abc"])
    with pytest.raises(InvalidArgument) as refused:
        await leverage.set("BTC/USDT:USDT", D(126), None)
    assert refused.value.violations[0].field == "leverage"
    assert "-4028" in str(refused.value) and "abc" not in str(refused.value)


class _Okx:
    id = "okx"

    def __init__(self, refusal: Exception | None = None) -> None:
        self.refusal = refusal
        self.sent: list[tuple[float, dict[str, Any]]] = []

    async def fetch_market_leverage_tiers(self, symbol: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"tier": 1, "maxLeverage": 100.0}]

    async def set_leverage(self, leverage: float, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.refusal is not None:
            raise self.refusal
        self.sent.append((leverage, params))
        return {}

    async def fetch_leverage(self, symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        lever = str(self.sent[-1][0]) if self.sent else "10"
        return {"info": [{"lever": lever, "mgnMode": params["marginMode"]}], "longLeverage": 2}


async def test_okx_keeps_the_mode_for_its_orders_and_maps_its_codes() -> None:
    rules, exchange = OkxSwapMargin(), _Okx()
    assert rules.order_params("BTC/USDT:USDT") == {"marginMode": "cross"}
    setting = await rules.set_leverage(exchange, "BTC/USDT:USDT", D("2.5"), MarginMode.ISOLATED, _plain)
    assert (setting.leverage, setting.mode, setting.max_leverage) == (D("2.5"), MarginMode.ISOLATED, D(100))
    assert exchange.sent == [(2.5, {"marginMode": "isolated"})]
    assert rules.order_params("BTC/USDT:USDT") == {"marginMode": "isolated"}
    with pytest.raises(InvalidArgument):
        await rules.set_leverage(exchange, "BTC/USDT:USDT", D(101), None, _plain)
    too_high = _Okx(ccxt.ExchangeError('okx {"code":"59102","msg":"Leverage exceeds the maximum leverage"}'))
    with pytest.raises(InvalidArgument) as refused:
        await rules.set_leverage(too_high, "BTC/USDT:USDT", D(50), None, _plain)
    assert refused.value.violations[0].field == "leverage"
    blocked = _Okx(ccxt.ExchangeError('okx {"code":"59000","msg":"Your settings failed"}'))
    with pytest.raises(FailedPrecondition):
        await rules.set_leverage(blocked, "BTC/USDT:USDT", D(50), None, _plain)
