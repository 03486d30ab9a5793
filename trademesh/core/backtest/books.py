"""The ledger's engine core in a backtest: the venue's opening balances deposited at the start,
then every fill posted as the live ledger posts an execution of the bus
(trademesh.core.ledger.convert.fill_event, of the fill's message made here), linked to the
intent, decision, signal and strategy its order was placed for (the live ledger learns the
links from the `intents` and `risk` streams; here the run hands them over as the inspector
allows each intent). A posting the core refuses is kept with its reason: a backtest's books
must balance as live ones do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.domain.convert import fill_to_pb
from trademesh.core.domain.model import Execution, Instrument, InstrumentKind
from trademesh.core.ledger.replay import (
    Contract,
    DepositEvent,
    Event,
    LedgerCore,
    OrderLink,
    PnlLine,
    PositionView,
    fill_event,
    funding_event,
)
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["BooksStage"]


def _contract(instrument: Instrument) -> Contract:
    """As the live ledger reads the venue's ListInstruments (Contract.from_instrument): an
    inverse perpetual is booked by its face value a contract, in the coin."""
    settle = instrument.settle_asset or instrument.quote_asset
    kind = InstrumentKind.PERPETUAL if instrument.kind is InstrumentKind.PERPETUAL else InstrumentKind.SPOT
    if instrument.inverse:
        return Contract(
            kind, instrument.base_asset, instrument.quote_asset, settle, instrument.contract_value, True
        )
    size = instrument.contract_size if instrument.contract_size > 0 else Decimal(1)
    return Contract(kind, instrument.base_asset, instrument.quote_asset, settle, size)


@dataclass
class BooksStage:
    venue: str
    instruments: Mapping[str, Instrument]
    core: LedgerCore = field(default_factory=LedgerCore)
    links: dict[str, OrderLink] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    posted: int = 0
    # A margined perpetual's leverage in force at the replayed venue, as the live ledger asks the
    # venue's GetLeverage when it books a fill (its margin: docs/ledger.md, "Margin"); None: 1x.
    leverage_of: Callable[[str], Decimal] | None = None

    def open(self, balances: Mapping[str, Decimal], now_ns: int) -> None:
        for asset, amount in sorted(balances.items()):
            if amount != 0:
                self._post(DepositEvent(f"opening/{self.venue}/{asset}", self.venue, asset, amount, now_ns))

    def allowed(self, intent: am.Intent, client_order_id: str, risk_event_id: str, now_ns: int) -> None:
        """The inspector placed `client_order_id` for `intent`: its fills are the strategy's."""
        self.links[client_order_id] = OrderLink(
            client_order_id, intent.venue, intent.symbol, intent.intent_id, intent.strategy_id,
            intent.decision_id, intent.signal_id, risk_event_id, now_ns,
        )  # fmt: skip

    def execution(self, execution: Execution) -> None:
        """The venue's execution: its fill, if any, posted as the live ledger posts the bus's
        message of it (the fill alone made that message: an order update books nothing)."""
        fill = execution.fill
        if fill is None:
            return
        instrument = self.instruments[fill.symbol]
        link = self.links.get(fill.client_order_id)
        leverage = Decimal(1)
        if self.leverage_of is not None and instrument.kind is InstrumentKind.PERPETUAL:
            leverage = self.leverage_of(instrument.symbol)
        message = tf.Execution(venue=self.venue, ts_event_ns=execution.ts_event_ns, fill=fill_to_pb(fill))
        self._post(fill_event(self.venue, message, _contract(instrument), link, leverage))

    def funding(self, payment: tf.FundingPayment) -> None:
        """A funding payment of the venue, posted as the live ledger posts what ListFundingPayments
        answers (trademesh.core.ledger.convert.funding_event): shared among the strategies holding it."""
        self._post(funding_event(self.venue, payment))

    def pnl(self, marks: Mapping[tuple[str, str], Decimal]) -> dict[tuple[str, str], PnlLine]:
        """PnL by (strategy, asset), unrealised at `marks` (the core keeps the rest between fills)."""
        return self.core.pnl(marks)

    def positions(self) -> list[PositionView]:
        return self.core.positions()

    def _post(self, event: Event) -> None:
        posting = self.core.post(event)
        if posting.posted:
            self.posted += 1
        else:
            self.refused.append(posting.refusal)
