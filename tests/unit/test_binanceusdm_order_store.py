"""The Binance USD-M stand-in's algo (conditional) orders: what it takes, refuses and reports, in
Binance's own codes and fields (trademesh/venues/binanceusdm/standin/order_store.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trademesh.venues.binanceusdm.standin.order_store import BinanceAlgoOrders
from trademesh.venues.replay.adapter import RestAnswer, RestRequest

HOST = "fapi.binance.com/fapi/"


def _call(store: BinanceAlgoOrders, method: str, endpoint: str, **params: str) -> tuple[int, Any]:
    answer: RestAnswer | None = store.answer(RestRequest(method, HOST + endpoint, params, ""), endpoint)
    assert answer is not None
    return answer.status, json.loads(answer.body)


def _stop(**fields: str) -> dict[str, str]:
    base = {
        "algoType": "CONDITIONAL",
        "symbol": "SUSHIUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "quantity": "20",
        "triggerPrice": "0.5",
        "workingType": "CONTRACT_PRICE",
        "clientAlgoId": "tm-1",
    }
    return {**base, **fields}


def _store() -> tuple[BinanceAlgoOrders, list[dict[str, Any]]]:
    store = BinanceAlgoOrders(lambda symbol: ("0.70", "0.71"))
    events: list[dict[str, Any]] = []
    store.on_event = events.append
    return store, events


def test_a_stop_rests_new_lists_reads_back_and_cancels_with_its_events() -> None:
    store, events = _store()
    status, placed = _call(store, "POST", "v1/algoOrder", **_stop(reduceOnly="true"))
    assert status == 200
    assert (placed["algoStatus"], placed["orderType"], placed["triggerPrice"], placed["reduceOnly"]) == (
        "NEW",
        "STOP_MARKET",
        "0.5",
        True,
    )
    algo_id = str(placed["algoId"])
    assert [o["algoId"] for o in _call(store, "GET", "v1/openAlgoOrders")[1]] == [placed["algoId"]]
    assert _call(store, "GET", "v1/algoOrder", clientAlgoId="tm-1")[1]["algoId"] == placed["algoId"]
    status, acknowledged = _call(store, "DELETE", "v1/algoOrder", algoId=algo_id)
    assert (status, acknowledged) == (
        200,
        {"algoId": placed["algoId"], "clientAlgoId": "tm-1", "code": "200", "msg": "success"},
    )
    assert _call(store, "GET", "v1/algoOrder", algoId=algo_id)[1]["algoStatus"] == "CANCELED"
    assert not _call(store, "GET", "v1/openAlgoOrders")[1]
    assert [(e["e"], e["o"]["X"], e["o"]["tp"], e["o"]["aid"]) for e in events] == [
        ("ALGO_UPDATE", "NEW", "0.5", placed["algoId"]),
        ("ALGO_UPDATE", "CANCELED", "0.5", placed["algoId"]),
    ]
    assert _call(store, "DELETE", "v1/algoOrder", algoId=algo_id) == (
        400,
        {"code": -2011, "msg": "Unknown order sent."},
    )


def test_cancel_all_cancels_one_symbols_waiting_stops() -> None:
    store, _ = _store()
    _call(store, "POST", "v1/algoOrder", **_stop(clientAlgoId="a"))
    _call(store, "POST", "v1/algoOrder", **_stop(clientAlgoId="b", symbol="CTKUSDT"))
    status, body = _call(store, "DELETE", "v1/algoOpenOrders", symbol="SUSHIUSDT")
    assert (status, body["code"]) == (200, 200)
    assert [o["clientAlgoId"] for o in _call(store, "GET", "v1/openAlgoOrders")[1]] == ["b"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"triggerPrice": ""}, -1102),
        ({"type": "STOP", "price": ""}, -1102),
        ({"type": "LIMIT"}, -1116),
        ({"workingType": "INDEX_PRICE"}, -1116),
        ({"triggerPrice": "0.70"}, -2021),  # a sell stop at the best bid: already crossed
        ({"side": "BUY", "triggerPrice": "0.71"}, -2021),  # a buy stop at the best ask
    ],
)
def test_what_binance_refuses_is_refused_with_its_code(fields: dict[str, str], code: int) -> None:
    store, events = _store()
    params = {k: v for k, v in _stop(**fields).items() if v != ""}
    status, body = _call(store, "POST", "v1/algoOrder", **params)
    assert (status, body["code"]) == (400, code)
    assert not events and not store.orders


def test_a_client_algo_id_already_waiting_is_a_duplicate() -> None:
    store, _ = _store()
    _call(store, "POST", "v1/algoOrder", **_stop())
    assert _call(store, "POST", "v1/algoOrder", **_stop())[1]["code"] == -4116
