// Capital efficiency as plain data: each strategy's capital (GetRiskState's CapitalUse rows:
// reserved by policy, used now, suppressed: asked for and refused by the reservation) as
// samples over time, and its utilisation (used / reserved). Studio keeps the samples it polls
// (docs/inspector-service.md, "Studio: the risk dashboard"): the inspector answers the present only.
import type { CapitalUse, GetRiskStateResponse } from "../gen/trademesh/risk/v1/inspector_pb";
import { forDrawing } from "../lib/decimal";

// An hour of the page's 1 s poll, per strategy.
export const KEEP_SAMPLES = 3600;
const NS_PER_S = 1_000_000_000n;

export interface CapitalSample {
  /** Seconds since the epoch (the chart's time scale): the inspector's ts of the answer. */
  time: number;
  /** Decimal strings as the inspector sent them ("" reserved: no reservation). */
  reserved: string;
  used: string;
  suppressed: string;
}

/** used / reserved as a number for display and drawing; null without a reservation. */
export function utilisation(use: { used: string; reserved: string }): number | null {
  if (use.reserved === "" || use.used === "") return null;
  const reserved = forDrawing(use.reserved);
  const used = forDrawing(use.used);
  return reserved > 0 && Number.isFinite(used) ? used / reserved : null;
}

export class CapitalHistory {
  private readonly samples = new Map<string, CapitalSample[]>();
  private readonly latest = new Map<string, CapitalUse>();

  /** Takes one answer: a sample per strategy it lists (one per second: a later answer of the
   * same second replaces that second's). */
  take(reply: GetRiskStateResponse): void {
    const time = Number(reply.tsNs / NS_PER_S);
    this.latest.clear();
    for (const use of reply.capital) {
      this.latest.set(use.strategyId, use);
      const series = this.samples.get(use.strategyId) ?? [];
      const sample = { time, reserved: use.reserved, used: use.used, suppressed: use.suppressed };
      const last = series[series.length - 1];
      if (last !== undefined && last.time > time) continue; // an older answer come late
      if (last !== undefined && last.time === time) series[series.length - 1] = sample;
      else series.push(sample);
      if (series.length > KEEP_SAMPLES) series.splice(0, series.length - KEEP_SAMPLES);
      this.samples.set(use.strategyId, series);
    }
  }

  /** The strategies of the last answer, by name. */
  current(): CapitalUse[] {
    return [...this.latest.values()].sort((a, b) => (a.strategyId < b.strategyId ? -1 : 1));
  }

  /** A strategy's samples, oldest first (kept after it leaves the answer, for its chart). */
  of(strategy: string): readonly CapitalSample[] {
    return this.samples.get(strategy) ?? [];
  }
}
