// The Backtest page's coverage strips: per venue and symbol, the bars held (History/GetCoverage)
// drawn as a strip over the held range with its holes marked; "use" picks that range (and venue,
// and the series' timeframe as the run's bars) for the run. The page asks for the 1m series (the finest grid archives and the bar service
// both write); given several, a symbol's strip is its 1m series, else its shortest timeframe. Before a run, `holesIn` names the holes of the
// run's venue and symbols inside its range, so the page can warn before it starts.
import type { Coverage } from "../gen/trademesh/history/v1/history_pb";
import { fill, h } from "../ui/dom";
import { utcSeconds } from "./figures";

const PREFERRED = "1m";

/** A hole of a run's range: the symbol, its timeframe and the bars missing in the range. */
export interface RangeHole {
  symbol: string;
  timeframe: string;
  startNs: bigint;
  endNs: bigint;
  bars: bigint;
}

/** Each venue and symbol's series to show: its 1m one, else its shortest held. */
export function stripSeries(series: readonly Coverage[]): Coverage[] {
  const chosen = new Map<string, Coverage>();
  for (const s of series) {
    const key = `${s.venue}\u0000${s.symbol}`;
    const held = chosen.get(key);
    if (held === undefined || (held.timeframe !== PREFERRED && (s.timeframe === PREFERRED || s.stepNs < held.stepNs))) {
      chosen.set(key, s);
    }
  }
  return [...chosen.values()];
}

/** The holes of `venue`'s `symbols` that overlap [startNs, endNs), clipped to it. */
export function holesIn(
  series: readonly Coverage[],
  venue: string,
  symbols: readonly string[],
  startNs: bigint,
  endNs: bigint,
): RangeHole[] {
  const wanted = new Set(symbols);
  const found: RangeHole[] = [];
  for (const s of stripSeries(series)) {
    if (s.venue !== venue || !wanted.has(s.symbol)) continue;
    for (const hole of s.holes) {
      const from = hole.startNs > startNs ? hole.startNs : startNs;
      const to = hole.endNs < endNs ? hole.endNs : endNs;
      if (from < to) found.push({ symbol: s.symbol, timeframe: s.timeframe, startNs: from, endNs: to, bars: (to - from) / s.stepNs });
    }
  }
  return found;
}

/** One line naming the holes, for the form's message. */
export function holesText(holes: readonly RangeHole[]): string {
  const missing = holes.reduce((sum, hole) => sum + hole.bars, 0n);
  const first = holes[0]!;
  const more = holes.length > 1 ? ` and ${holes.length - 1} more` : "";
  return (
    `the range has ${holes.length} hole${holes.length === 1 ? "" : "s"} (${missing} bars missing): ` +
    `${first.symbol} ${first.timeframe} ${utcSeconds(first.startNs)} → ${utcSeconds(first.endNs)}${more}`
  );
}

function percent(part: bigint, whole: bigint): string {
  return whole <= 0n ? "0%" : `${(Number((part * 1_000_000n) / whole) / 10_000).toFixed(4)}%`;
}

export class CoverageStrips {
  readonly root = h("div", { id: "backtest-coverage", class: "coverage" });
  series: readonly Coverage[] = [];

  constructor(
    private readonly onPick: (venue: string, startNs: bigint, endNs: bigint, timeframe: string) => void,
  ) {
    fill(this.root, h("span", { class: "empty" }, "loading…"));
  }

  show(series: readonly Coverage[]): void {
    this.series = series;
    const strips = stripSeries(series).map((s) => this.strip(s));
    fill(this.root, ...(strips.length > 0 ? strips : [h("span", { class: "empty" }, "no bars held yet")]));
  }

  /** What went wrong reading it (the page still runs without it). */
  failed(text: string): void {
    if (this.series.length === 0) fill(this.root, h("span", { class: "empty" }, `coverage unknown: ${text}`));
  }

  private strip(s: Coverage): HTMLElement {
    const whole = s.endNs - s.startNs;
    const holes = s.holes.map((hole) =>
      h("span", {
        class: "coverage-hole",
        style: `left: ${percent(hole.startNs - s.startNs, whole)}; width: ${percent(hole.endNs - hole.startNs, whole)}`,
        title: `${utcSeconds(hole.startNs)} → ${utcSeconds(hole.endNs)}`,
        "data-start-ns": String(hole.startNs),
        "data-end-ns": String(hole.endNs),
      }),
    );
    const use = h("button", { type: "button", class: "coverage-use" }, "use");
    use.addEventListener("click", () => this.onPick(s.venue, s.startNs, s.endNs, s.timeframe));
    const summary =
      `${utcSeconds(s.startNs)} → ${utcSeconds(s.endNs)} · ${s.bars} bars` +
      (s.holeCount > 0n ? ` · ${s.holeCount} hole${s.holeCount === 1n ? "" : "s"} (${s.missingBars} bars missing)` : "");
    return h(
      "div",
      {
        class: "coverage-strip",
        "data-venue": s.venue,
        "data-symbol": s.symbol,
        "data-timeframe": s.timeframe,
        "data-holes": String(s.holeCount),
        "data-start-ns": String(s.startNs),
        "data-end-ns": String(s.endNs),
      },
      h("span", { class: "coverage-name" }, `${s.venue} ${s.symbol} ${s.timeframe}`),
      h("span", { class: "coverage-track" }, ...holes),
      h("span", { class: "coverage-range" }, summary),
      use,
    );
  }
}
