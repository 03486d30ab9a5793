"""The OKX stand-in's coin-margined swap (BTC-USD-SWAP, 100 USD contracts, settled in BTC), from
the instruments answer of fixtures/exchange-captures/OKX_INVERSE.0: a fill's fee is 0.05% of its
coin worth (sz x ctVal / px, to 1e-8 BTC), the position's average is the harmonic mean of its
fills, and closing it realises face x (1/entry - 1/exit) in BTC."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from trademesh.venues.okx.standin.order_store import OkxOrderStore, instruments_of
from trademesh.venues.replay.adapter import RestRequest

D = Decimal
CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "exchange-captures" / "OKX_INVERSE.0"
INST = "BTC-USD-SWAP"


def store(best: list[tuple[str, str]]) -> OkxOrderStore:
    body = CAPTURE.read_text().split(": ", 1)[1]
    return OkxOrderStore(instruments_of(body), lambda inst_id: best[-1] if inst_id == INST else None)


def call(okx: OkxOrderStore, method: str, path: str, **params: str) -> list[dict[str, str]]:
    body = json.dumps(params) if method == "POST" else ""
    query = {} if method == "POST" else params
    answer = okx.answer(RestRequest(method, f"www.okx.com/api/v5/{path}", query, body))
    assert answer is not None
    data: list[dict[str, str]] = json.loads(answer.body)["data"]
    return data


def test_the_capture_lists_an_inverse_swap_of_100_usd() -> None:
    body = CAPTURE.read_text().split(": ", 1)[1]
    (instrument,) = instruments_of(body).values()
    assert (instrument.inst_id, instrument.quote, instrument.ct_val, instrument.inverse) == (
        INST,
        "BTC",
        D(100),
        True,
    )


def test_fees_and_realised_pnl_are_in_the_coin() -> None:
    best = [("50000", "50000.1")]
    okx = store(best)
    call(okx, "POST", "trade/order", instId=INST, side="buy", ordType="market", sz="3", tdMode="cross")
    best.append(("40000", "40000.1"))
    call(okx, "POST", "trade/order", instId=INST, side="buy", ordType="market", sz="2", tdMode="cross")
    (position,) = call(okx, "GET", "account/positions")
    # 300 USD at 50,000.1 and 200 at 40,000.1: 500 USD for 0.00599... BTC, the harmonic mean
    coin = D(300) / D("50000.1") + D(200) / D("40000.1")
    assert D(position["avgPx"]) == (D(500) / coin).quantize(D("1e-8"))
    assert (position["pos"], position["notionalUsd"], position["ccy"]) == ("5", "500", "BTC")
    best.append(("55000", "55000.1"))
    (sold,) = call(
        okx, "POST", "trade/order", instId=INST, side="sell", ordType="market", sz="5", tdMode="cross"
    )
    order = call(okx, "GET", "trade/order", instId=INST, ordId=sold["ordId"])[0]
    assert (order["feeCcy"], D(order["fee"])) == (
        "BTC",
        -(D(500) / D(55000) * D("0.0005")).quantize(D("1e-8")),
    )
    assert call(okx, "GET", "account/positions") == [], "closed"
    entry = D(position["avgPx"])
    realised = (D(500) * (1 / entry - 1 / D(55000))).quantize(D("1e-8"))
    assert okx.positions[INST].pnl == realised > 0
