// The risk-event timeline's contents: the recorded events (ListRiskEvents) and the live ones
// (WatchRiskEvents) as one list, newest first, each event once (by its id on the bus), at most
// KEEP of them.
import type { RiskEvent } from "../gen/trademesh/risk/v1/inspector_pb";

const KEEP = 500;

function key(event: RiskEvent): string {
  // Published events carry their bus id; one without (never published) is told by its content.
  return event.eventId || `${event.tsNs}|${event.action}|${event.policy}|${event.reason}|${event.intentId}`;
}

function newerFirst(a: RiskEvent, b: RiskEvent): number {
  if (a.tsNs !== b.tsNs) return a.tsNs > b.tsNs ? -1 : 1;
  return key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0;
}

export class RiskEventLog {
  private readonly events = new Map<string, RiskEvent>();

  /** Adds events (repeats ignored); true when any was new. */
  add(events: readonly RiskEvent[]): boolean {
    let added = false;
    for (const event of events) {
      const id = key(event);
      if (this.events.has(id)) continue;
      this.events.set(id, event);
      added = true;
    }
    if (added && this.events.size > KEEP) {
      for (const old of this.list().slice(KEEP)) this.events.delete(key(old));
    }
    return added;
  }

  /** Newest first. */
  list(): RiskEvent[] {
    return [...this.events.values()].sort(newerFirst);
  }
}
