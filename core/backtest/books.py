"""The ledger's engine core in a backtest: the venue's opening balances deposited at the start,
then every fill posted as the live ledger posts an execution of the bus
(core.ledger.convert.fill_event), linked to the intent, decision, signal and strategy its order
was placed for (the live ledger learns the links from the `intents` and `risk` streams; here
the run hands them over as the inspector allows each intent). A posting the core refuses is
kept with its reason: a backtest's books must balance as live ones do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.foundations.model import Instrument, InstrumentKind
from core.ledger.attribution import OrderLink
from core.ledger.convert import fill_event, funding_event
from core.ledger.engine.core import LedgerCore
from core.ledger.engine.events import DepositEvent, Event
from core.ledger.engine.reports import PnlLine, PositionView, pnl, positions
from core.ledger.venues import Contract
from trademesh.advisor.v1 import messages_pb2 as am
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

    def execution(self, message: tf.Execution) -> None:
        if not message.HasField("fill"):
            return
        instrument = self.instruments[message.fill.symbol]
        link = self.links.get(message.fill.client_order_id)
        leverage = Decimal(1)
        if self.leverage_of is not None and instrument.kind is InstrumentKind.PERPETUAL:
            leverage = self.leverage_of(instrument.symbol)
        self._post(fill_event(self.venue, message, _contract(instrument), link, leverage))

    def funding(self, payment: tf.FundingPayment) -> None:
        """A funding payment of the venue, posted as the live ledger posts what ListFundingPayments
        answers (core.ledger.convert.funding_event): shared among the strategies holding it."""
        self._post(funding_event(self.venue, payment))

    def pnl(self, marks: Mapping[tuple[str, str], Decimal]) -> dict[tuple[str, str], PnlLine]:
        """PnL by (strategy, asset), unrealised at `marks`."""
        return pnl(self.core.accounts, self.core.balances, marks)

    def positions(self) -> list[PositionView]:
        return positions(self.core.accounts, self.core.balances)

    def _post(self, event: Event) -> None:
        posting = self.core.post(event)
        if posting.posted:
            self.posted += 1
        else:
            self.refused.append(posting.refusal)
