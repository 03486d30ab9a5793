// The decision log's contents: decisions from the backlog (ListDecisions) and the live stream
// (WatchDecisions) merged by id, newest first, the oldest dropped past a limit. A decision seen
// twice (in the backlog and live) is one row.
import type { Decision } from "../gen/trademesh/advisor/v1/messages_pb";

const KEPT = 300;

function newerFirst(a: Decision, b: Decision): number {
  if (a.tsDecisionNs !== b.tsDecisionNs) return a.tsDecisionNs > b.tsDecisionNs ? -1 : 1;
  return a.decisionId < b.decisionId ? -1 : a.decisionId > b.decisionId ? 1 : 0;
}

export class DecisionLog {
  private readonly byId = new Map<string, Decision>();
  private sorted: Decision[] = [];

  constructor(private readonly limit = KEPT) {}

  /** Adds decisions; true when the log changed. */
  add(decisions: readonly Decision[]): boolean {
    const fresh = decisions.filter((d) => d.decisionId !== "" && !this.byId.has(d.decisionId));
    if (fresh.length === 0) return false;
    for (const decision of fresh) this.byId.set(decision.decisionId, decision);
    this.sorted = [...this.byId.values()].sort(newerFirst);
    for (const dropped of this.sorted.splice(this.limit)) this.byId.delete(dropped.decisionId);
    return true;
  }

  get(decisionId: string): Decision | undefined {
    return this.byId.get(decisionId);
  }

  /** Newest first. */
  list(): readonly Decision[] {
    return this.sorted;
  }

  clear(): void {
    this.byId.clear();
    this.sorted = [];
  }
}
