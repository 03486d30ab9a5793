"""The Deribit stand-in's futures (trademesh/venues/deribit/standin/order_store.py): an inverse
perpetual's fill pays 0.05% of its coin value (to a satoshi) and no premium; a reducing fill
realises amount x (1/average - 1/price) of the coin, the average the harmonic mean."""

from __future__ import annotations

from decimal import Decimal

from trademesh.venues.deribit.standin.order_store import START_BALANCES, DeribitOrderStore

D = Decimal


def store(bid: str, ask: str) -> DeribitOrderStore:
    return DeribitOrderStore(lambda instrument: (D(bid), D(ask)))


def test_a_perpetuals_fill_pays_its_fee_in_the_coin_and_no_premium() -> None:
    s = store("49999.5", "50000")
    answer = s.call("private/buy", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "type": "market"})
    (trade,) = answer["trades"]
    # 1000 USD at 50,000 is 0.02 BTC: 0.05% of it, 0.00001 BTC
    assert (trade["price"], trade["amount"], trade["fee"], trade["fee_currency"]) == (
        50000,
        1000,
        0.00001,
        "BTC",
    )
    assert s.cash["BTC"] == START_BALANCES["BTC"] - D("0.00001")
    position = s.position("BTC-PERPETUAL")
    assert (position["size"], position["size_currency"], position["kind"]) == (1000, 0.02, "future")


def test_a_reducing_fill_realises_the_coin_at_the_harmonic_average() -> None:
    s = store("39999.5", "40000")
    s.call("private/buy", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "type": "market"})  # 0.025 BTC
    s.best = lambda instrument: (D(50000), D("50000.5"))
    s.call("private/sell", {"instrument_name": "BTC-PERPETUAL", "amount": 1000, "type": "market"})  # 0.02 BTC
    fees = D("0.0000125") + D("0.00001")  # 0.05% of 0.025 and of 0.02
    # long 1000 USD from 40,000 to 50,000: 1000 x (1/40000 - 1/50000) = 0.005 BTC
    assert s.cash["BTC"] == START_BALANCES["BTC"] + D("0.005") - fees.quantize(D("1e-8"))
    assert s.call("private/get_positions", {"currency": "BTC"}) == []  # flat
