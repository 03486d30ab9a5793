"""OKX swaps' leverage, position margin and liquidations for the replay stand-in.

The spot store (trademesh.venues.okx.standin.order_store) fills orders and keeps net positions; for swaps
this store adds what OKX's account API says of leverage and margin (OKX API v5):
- POST /api/v5/account/set-leverage ({instId, lever, mgnMode[, posSide]}: data [{instId, lever,
  mgnMode, posSide}]); a lever above the instrument's tier allows is refused 59102 ("Leverage
  exceeds the maximum leverage. Please adjust the leverage"), a bad one 51000 ("Parameter lever
  error"); OKX keeps a leverage per instrument and margin mode: 1 until set here (the stand-in's
  account starts fully funded, as the sim's does);
- GET /api/v5/account/leverage-info?instId&mgnMode (data [{instId, mgnMode, posSide, lever}]);
- GET /api/v5/public/position-tiers?instType=SWAP&tdMode&instFamily: the stand-in's tiers, by
  position size in contracts ({tier, minSz, maxSz, mmr, imr, maxLever, ...});
- an order's tdMode (cross or isolated) is its position's mgnMode; its `lever` the one set;
- GET /api/v5/account/positions (and the `positions` pushes): markPx the instrument's last
  `mark-price` push replayed (else the book's mid), upl at it, imr (cross) or margin (isolated:
  what the position put in, size x ctVal x avgPx / lever), mmr = notional at mark x the tier's
  mmr, mgnRatio as OKX states it ((margin + upl) / mmr), liqPx where margin + upl = mmr (linear:
  long (size x avgPx - margin) / (size x (1 - mmr rate)), short (size x avgPx + margin) /
  (size x (1 + mmr rate)); cross margin is the settle currency's available balance);
- a replayed mark at or past liqPx liquidates the position: a market order of category
  "full_liquidation" fills it at the bankruptcy price (where margin + upl is 0) with the swaps'
  taker fee, pushed on `orders` as any fill (execType T), then `account` and `positions`.
Inverse swaps keep the spot store's figures (their markPx the average price, no liqPx), at the
lever in force.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from trademesh.venues.okx.standin.order_store import BALANCES, BestPrices, OkxInstrument, OkxOrderStore
from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["TIERS", "SwapOrderStore"]

Json = dict[str, Any]
D = Decimal
# (tier, maxSz in contracts, maxLever, mmr rate, imr rate): OKX's BTC-USDT-SWAP first tiers.
TIERS = (
    (1, D(500), D(100), D("0.004"), D("0.01")),
    (2, D(1000), D(75), D("0.005"), D("0.0133")),
    (3, D(2000), D(50), D("0.01"), D("0.02")),
    (4, D(5000), D(20), D("0.025"), D("0.05")),
)
_DEFAULT_LEVERAGE = D(1)
_PLACES = D("1e-8")
_MODES = ("cross", "isolated")
_LIQUIDATION = "full_liquidation"


def _text(value: Decimal) -> str:
    return format(value.quantize(_PLACES).normalize(), "f") if value else "0"


def _answer(data: list[Json], code: str = "0", msg: str = "") -> RestAnswer:
    return RestAnswer.json({"code": code, "msg": msg, "data": data})


def tier_of(contracts: Decimal) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
    return next((t for t in TIERS if contracts <= t[1]), TIERS[-1])


class SwapOrderStore(OkxOrderStore):
    def __init__(
        self,
        instruments: Mapping[str, OkxInstrument],
        best: BestPrices,
        mark: Callable[[str], Decimal | None],
    ) -> None:
        super().__init__(instruments, best)
        self.mark = mark
        self.leverage: dict[tuple[str, str], Decimal] = {}  # (instId, mgnMode) -> lever
        self.modes: dict[str, str] = {}  # instId -> the open position's mgnMode
        self.isolated: dict[str, Decimal] = {}  # instId -> the isolated margin put in
        self._routes[("POST", "account/set-leverage")] = self._set_leverage
        self._routes[("GET", "account/leverage-info")] = self._leverage_info
        self._routes[("GET", "public/position-tiers")] = self._tiers

    # ---- leverage

    def _lever(self, inst_id: str, mode: str) -> Decimal:
        return self.leverage.get((inst_id, mode), _DEFAULT_LEVERAGE)

    def _set_leverage(self, request: RestRequest) -> RestAnswer:
        params = json.loads(request.body or "{}")
        inst_id, mode = str(params.get("instId", "")), str(params.get("mgnMode", ""))
        if inst_id not in self.instruments:
            return _answer([], "51001", "Instrument ID does not exist")
        if mode not in _MODES:
            return _answer([], "51000", "Parameter mgnMode error")
        try:
            lever = D(str(params.get("lever")))
        except ArithmeticError:
            return _answer([], "51000", "Parameter lever error")
        position = self.positions.get(inst_id)
        most = tier_of(abs(position.pos) if position else D(0))[2]
        if lever < D("0.01"):
            return _answer([], "51000", "Parameter lever error")
        if lever > most:
            return _answer([], "59102", "Leverage exceeds the maximum leverage. Please adjust the leverage")
        self.leverage[(inst_id, mode)] = lever
        return _answer([{"instId": inst_id, "lever": _text(lever), "mgnMode": mode, "posSide": "net"}])

    def _leverage_info(self, request: RestRequest) -> RestAnswer:
        mode = request.query.get("mgnMode", "")
        if mode not in _MODES:
            return _answer([], "51000", "Parameter mgnMode error")
        rows = []
        for inst_id in request.query.get("instId", "").split(","):
            if inst_id not in self.instruments:
                return _answer([], "51001", "Instrument ID does not exist")
            lever = _text(self._lever(inst_id, mode))
            rows.append({"instId": inst_id, "mgnMode": mode, "posSide": "net", "lever": lever})
        return _answer(rows)

    def _tiers(self, request: RestRequest) -> RestAnswer:
        family = request.query.get("instFamily", "")
        floor = D(0)
        rows = []
        for tier, top, lever, mmr, imr in TIERS:
            rows.append(
                {
                    "uly": family,
                    "instFamily": family,
                    "instId": "",
                    "tier": str(tier),
                    "minSz": _text(floor),
                    "maxSz": _text(top),
                    "mmr": _text(mmr),
                    "imr": _text(imr),
                    "maxLever": _text(lever),
                    "optMgnFactor": "0",
                    "quoteMaxLoan": "",
                    "baseMaxLoan": "",
                }
            )
            floor = top
        return _answer(rows)

    # ---- orders and positions

    def _new_order(self, params: Json, instrument: OkxInstrument) -> Json:
        order = super()._new_order(params, instrument)
        if instrument.inst_type == "SWAP":
            mode = order["tdMode"] if order["tdMode"] in _MODES else "cross"
            order.update(tdMode=mode, lever=_text(self._lever(instrument.inst_id, mode)))
        return order

    def _move_position(
        self, order: Json, instrument: OkxInstrument, size: Decimal, px: Decimal, fee: Decimal
    ) -> None:
        inst_id = instrument.inst_id
        before = self.positions[inst_id].pos if inst_id in self.positions else D(0)
        super()._move_position(order, instrument, size, px, fee)
        after = self.positions[inst_id].pos
        if before == 0:
            self.modes[inst_id] = order["tdMode"]
        if self.modes.get(inst_id) != "isolated" or instrument.inverse:
            return
        held = self.isolated.get(inst_id, D(0))
        if after == 0:
            held = D(0)
        elif before == 0 or ((after > 0) == (before > 0) and abs(after) > abs(before)):  # opened or added to
            held += size * instrument.ct_val * px / self._lever(inst_id, "isolated")
        elif (after > 0) != (before > 0) and before != 0:  # flipped: the rest opened at px
            held = abs(after) * instrument.ct_val * px / self._lever(inst_id, "isolated")
        else:  # reduced
            held = held * abs(after) / abs(before)
        self.isolated[inst_id] = held

    def _figures(self, inst_id: str) -> dict[str, Decimal]:
        position, instrument = self.positions[inst_id], self.instruments[inst_id]
        mode = self.modes.get(inst_id, "cross")
        lever = self._lever(inst_id, mode)
        mark = self.mark(inst_id) or position.avg_px
        size = abs(position.pos) * instrument.ct_val  # in the base currency
        _, _, _, rate, _ = tier_of(abs(position.pos))
        upl = position.pos * instrument.ct_val * (mark - position.avg_px)
        if mode == "isolated":
            margin = self.isolated.get(inst_id, D(0))
        else:
            margin = D(BALANCES.get(instrument.quote, ("0", "0"))[0])
        long = position.pos > 0
        if size == 0:
            liquidation = D(0)
        elif long:
            liquidation = (size * position.avg_px - margin) / (size * (1 - rate))
        else:
            liquidation = (size * position.avg_px + margin) / (size * (1 + rate))
        mmr = size * mark * rate
        return {
            "mark": mark,
            "lever": lever,
            "upl": upl,
            "notional": size * mark,
            "imr": size * mark / lever,
            "margin": margin,
            "mmr": mmr,
            "liquidation": max(liquidation, D(0)),
            "bankruptcy": position.avg_px - margin / size if long else position.avg_px + margin / size,
        }

    def _position(self, inst_id: str) -> Json:
        row = super()._position(inst_id)
        instrument, position = self.instruments[inst_id], self.positions[inst_id]
        if instrument.inverse or position.pos == 0:  # the spot store's figures, at the lever in force
            mode = self.modes.get(inst_id, "cross")
            lever = self._lever(inst_id, mode)
            worth = abs(position.pos) * instrument.ct_val / position.avg_px if position.avg_px else D(0)
            held = worth if instrument.inverse else abs(position.pos) * instrument.ct_val * position.avg_px
            return {**row, "mgnMode": mode, "lever": _text(lever), "imr": _text(held / lever)}
        f = self._figures(inst_id)
        mode = self.modes.get(inst_id, "cross")
        isolated = mode == "isolated"
        row.update(
            mgnMode=mode,
            lever=_text(f["lever"]),
            markPx=_text(f["mark"]),
            last=_text(f["mark"]),
            upl=_text(f["upl"]),
            uplRatio=_text(f["upl"] / (f["margin"] if isolated else f["imr"])) if f["imr"] else "0",
            notionalUsd=_text(f["notional"]),
            imr="" if isolated else _text(f["imr"]),
            margin=_text(f["margin"]) if isolated else "",
            mmr=_text(f["mmr"]),
            mgnRatio=_text((f["margin"] + f["upl"]) / f["mmr"]) if f["mmr"] else "",
            liqPx=_text(f["liquidation"]) if f["liquidation"] else "",
        )
        return row

    def _balance(self) -> Json:
        """The account with the swaps' margin: a currency's imr (cross), isoEq (isolated margin
        and its upl) and upl, as OKX's balance details state them."""
        balance = super()._balance()
        held: dict[str, dict[str, Decimal]] = {}
        for inst_id, position in self.positions.items():
            instrument = self.instruments[inst_id]
            if position.pos == 0 or instrument.inverse:
                continue
            f = self._figures(inst_id)
            mine = held.setdefault(instrument.quote, {"imr": D(0), "isoEq": D(0), "upl": D(0), "mmr": D(0)})
            if self.modes.get(inst_id) == "isolated":
                mine["isoEq"] += f["margin"] + f["upl"]
            else:
                mine["imr"] += f["imr"]
            mine["upl"] += f["upl"]
            mine["mmr"] += f["mmr"]
        for detail in balance["details"]:
            figures = held.get(detail["ccy"])
            if figures is not None:
                detail.update({name: _text(value) for name, value in figures.items()})
        return balance

    # ---- liquidation

    def liquidate(self, inst_id: str) -> bool:
        """Liquidate the instrument's position when the mark has reached its liqPx (True: done)."""
        position, instrument = self.positions.get(inst_id), self.instruments.get(inst_id)
        mark = self.mark(inst_id)
        if position is None or instrument is None or instrument.inverse or position.pos == 0 or mark is None:
            return False
        f = self._figures(inst_id)
        long = position.pos > 0
        if not f["liquidation"] or (mark > f["liquidation"] if long else mark < f["liquidation"]):
            return False
        params = {
            "instId": inst_id,
            "side": "sell" if long else "buy",
            "ordType": "market",
            "sz": _text(abs(position.pos)),
            "tdMode": self.modes.get(inst_id, "cross"),
            "reduceOnly": "true",
        }
        order = self._new_order(params, instrument)
        order["category"] = _LIQUIDATION
        self.orders[order["ordId"]] = order
        self._push(order)
        self._fill(order, instrument, _text(max(f["bankruptcy"], D(0))))
        return True
