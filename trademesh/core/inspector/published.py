"""What an input made, for the bus stream `risk`: its events, transitions and the protective
orders' links, named by the input's journal entry (RiskLog.publish's `made_by`).

An inspector killed between its journal's append and that publication leaves an input the
restart's replay applies but nobody published: a liquidation's notice, a stand-down, the links
the ledger books a stop's fill by. The replay keeps what each replayed input made (`Owed`) and the
restart publishes those the stream holds no entry for (RiskLog.published_inputs). A snapshot
never covers an input whose publication has not ended (`Publications.settled`): the replay after
it would not see that input again."""

from __future__ import annotations

from dataclasses import dataclass, field

from trademesh.core.inspector.convert import order_links, risk_event_to_pb, transition_to_pb
from trademesh.core.inspector.engine.events import RiskOutput, RiskVerdict
from trademesh.core.inspector.input_journal import EntryId
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["Owed", "Publications", "RiskRecord", "made_of"]


@dataclass(frozen=True)
class RiskRecord:
    events: list[rk.RiskEvent]
    transitions: list[rk.Transition]
    links: list[rk.OrderLink]
    now_ns: int

    def __bool__(self) -> bool:
        return bool(self.events or self.transitions or self.links)


def made_of(result: RiskOutput | RiskVerdict, now_ns: int) -> RiskRecord:
    """What an applied input's result publishes (empty when nothing)."""
    output = result.output if isinstance(result, RiskVerdict) else result
    return RiskRecord(
        [risk_event_to_pb(e) for e in output.events],
        [transition_to_pb(t) for t in output.transitions],
        order_links(output.actions, now_ns),
        now_ns,
    )


@dataclass
class Owed:
    """The replayed inputs that made something, in the journal's order."""

    made: list[tuple[EntryId, RiskRecord]] = field(default_factory=list)

    def add(self, entry_id: EntryId, made: RiskRecord) -> None:
        if made:
            self.made.append((entry_id, made))

    @property
    def since_ms(self) -> int:
        return self.made[0][0][0] if self.made else 0


@dataclass
class Publications:
    """The live shell's publications under way, and whether one failed (its input is then left
    to the next restart's replay: no snapshot may cover it before)."""

    running: int = 0
    failed: bool = False

    @property
    def settled(self) -> bool:
        return self.running == 0 and not self.failed
