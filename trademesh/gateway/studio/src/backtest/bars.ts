// The Backtest form's "Bars" select: every trade_bars and bars source of the run's strategies on
// one timeframe (StartBacktest's options.bars, `trademesh backtest --bars`; docs/backtest.md,
// "History of bars alone"), so a strategy tuned on 1s bars runs over a venue's downloaded 1m
// history. "" is each strategy's own. The choices are the mesh's timeframes (the hub refuses any
// other); a coverage strip's "use" sets it to that series' timeframe.
import { TIMEFRAMES } from "../market/timeframes";

export const OWN_BARS = "";
export const OWN_BARS_LABEL = "the strategy's own";

export interface BarsChoice {
  value: string;
  label: string;
}

/** The select's choices: the strategies' own first, then the mesh's timeframes, finest first. */
export function barsChoices(): BarsChoice[] {
  return [{ value: OWN_BARS, label: OWN_BARS_LABEL }, ...TIMEFRAMES.map((t) => ({ value: t.label, label: t.label }))];
}

/** The Bars once a coverage strip's series of `timeframe` is picked: that timeframe when it is a
 * choice, else the one there was (a series of a timeframe the mesh does not run stays out). */
export function barsOnPick(current: string, timeframe: string): string {
  return barsChoices().some((c) => c.value === timeframe && timeframe !== OWN_BARS) ? timeframe : current;
}

/** What a run's options say of its bars: "bars 1m", or "" for the strategies' own. */
export function barsText(bars: string): string {
  return bars === OWN_BARS ? "" : `bars ${bars}`;
}
