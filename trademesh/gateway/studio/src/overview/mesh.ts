// The overview stream as the Overview page draws it (Overwatch.StreamOverview, docs/overwatch.md,
// "The overview"): each message is the whole mesh at a glance (the risk governor's summary, each
// strategy's state, last signal, open positions, realised PnL and fees, and the parts that did
// not answer), so the page keeps the last one. A part named unavailable is shown as such, never
// as zero: its figures are empty in the message.
import type { Overview, StrategySummary } from "../gen/trademesh/overwatch/v1/overwatch_pb";

/** The parts the page names when they do not answer, as Overwatch names them. */
export const RISK_PART = "inspector";
export const PNL_PART = "ledger";

/** "detector <name>" -> the detector's name; null for another part. */
export function detectorOf(part: string): string | null {
  return part.startsWith("detector ") ? part.slice("detector ".length) : null;
}

export class MeshOverview {
  last: Overview | null = null;
  /** Messages taken (0: none yet). */
  updates = 0;

  take(overview: Overview | undefined): void {
    if (overview === undefined) return;
    this.last = overview;
    this.updates += 1;
  }

  unavailable(): readonly string[] {
    return this.last?.unavailable ?? [];
  }

  /** True when the risk summary was read (the inspector answered). */
  riskRead(): boolean {
    const last = this.last;
    return last !== null && !last.unavailable.includes(RISK_PART) && last.risk !== undefined && last.risk.state !== "";
  }

  /** True when the strategies' PnL was read (the ledger answered). */
  pnlRead(): boolean {
    return this.last !== null && !this.last.unavailable.includes(PNL_PART);
  }

  /** The strategies, by name (as Overwatch sends them). */
  strategies(): readonly StrategySummary[] {
    return this.last?.strategies ?? [];
  }
}
