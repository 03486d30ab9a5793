"""The MCP tools' renderings of margin and liquidation (issue 60): a derivatives position's
margin figures as the venue's decimal strings, null for spot (never "" or a float); a
liquidation order marked; a balance's position margin; the inspector's view with its distance."""

from __future__ import annotations

from trademesh.core.tools import render
from trademesh.core.tools.inspector import _position as inspector_position
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

MARGIN_KEYS = (
    "mark_price",
    "leverage",
    "margin_mode",
    "initial_margin",
    "maintenance_margin",
    "margin_ratio",
    "unrealized_pnl",
    "liquidation_price",
    "settle_asset",
)


def test_a_perpetual_position_carries_its_margin_figures_as_the_venues_decimal_strings() -> None:
    position = tf.Position(
        symbol="BTC/USDT:USDT",
        size="0.5",
        entry_price="65000",
        realized_pnl="0",
        mark_price="64000.5",
        leverage="10",
        margin_mode=tf.MARGIN_MODE_ISOLATED,
        initial_margin="3250",
        maintenance_margin="128.001",
        margin_ratio="0.0449",
        unrealized_pnl="-499.75",
        liquidation_price="58825.5",
        settle_asset="USDT",
    )
    shown = render.position(position)
    assert {key: shown[key] for key in MARGIN_KEYS} == {
        "mark_price": "64000.5",
        "leverage": "10",
        "margin_mode": "isolated",
        "initial_margin": "3250",
        "maintenance_margin": "128.001",
        "margin_ratio": "0.0449",
        "unrealized_pnl": "-499.75",
        "liquidation_price": "58825.5",
        "settle_asset": "USDT",
    }
    assert (
        render.position(tf.Position(symbol="BTC/USD:BTC", size="-10", margin_mode=tf.MARGIN_MODE_CROSS))[
            "margin_mode"
        ]
        == "cross"
    )


def test_a_spot_position_has_every_margin_figure_null() -> None:
    shown = render.position(
        tf.Position(symbol="BTC/USDT", size="0.01", entry_price="65000", realized_pnl="0")
    )
    assert shown["size"] == "0.01" and shown["entry_price"] == "65000"
    assert all(shown[key] is None for key in MARGIN_KEYS), shown


def test_a_liquidation_order_is_marked_and_a_balance_says_the_margin_its_positions_hold() -> None:
    assert render.order(tf.Order(client_order_id="liq-1", liquidation=True))["liquidation"] is True
    assert render.order(tf.Order(client_order_id="c-1"))["liquidation"] is False
    held = tf.Balance(asset="USDT", free="6750", locked="3250", total="10000", position_margin="3250")
    assert render.balance(held)["position_margin"] == "3250"
    assert render.balance(tf.Balance(asset="BTC", free="1", locked="0", total="1"))["position_margin"] is None


def test_the_inspectors_view_carries_leverage_ratio_liquidation_price_and_distance() -> None:
    view = rk.PositionView(
        venue="sim",
        symbol="BTC/USDT:USDT",
        size="0.5",
        leverage="10",
        margin_ratio="0.0449",
        liquidation_price="58825.5",
        liquidation_distance="0.0949",
        margin_mode=tf.MARGIN_MODE_CROSS,
    )
    shown = inspector_position(view)
    assert (shown["leverage"], shown["margin_mode"], shown["margin_ratio"]) == ("10", "cross", "0.0449")
    assert (shown["liquidation_price"], shown["liquidation_distance"]) == ("58825.5", "0.0949")
    spot = inspector_position(rk.PositionView(venue="sim", symbol="BTC/USDT", size="0.01"))
    keys = ("leverage", "margin_mode", "margin_ratio", "liquidation_price", "liquidation_distance")
    assert all(spot[key] is None for key in keys), spot
