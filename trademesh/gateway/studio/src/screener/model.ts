// A screen's latest result as rows (docs/screener.md): every ranked instrument with its rank,
// score and metrics (each the wire's decimal string: the money ones, volumes and depth in the
// quote asset, rounded to the cent for display (lib/money), the rest shown as they came), whether
// it is in the screen's top, sorted by the column the operator picks. Sorting compares the metrics' values as
// numbers (they are statistics to rank by, not money); an instrument lacking one sorts after
// those that have it, either way. Ties keep the screen's own order (its rank).
import type { ScreenDefinition, ScreenResult } from "../gen/trademesh/screener/v1/screener_pb";
import { amountText, QUOTE } from "../lib/money";
import { TIMEFRAMES } from "../market/timeframes";

/** The metrics that are money in the quote asset (trademesh/core/screener/engine/metrics.py): the 24h
 * volume, the bars' volume and the top of book's depth. */
const MONEY_METRICS = new Set(["volume_24h", "bar_volume", "top_depth"]);

export interface ResultRow {
  rank: number;
  symbol: string;
  score: number;
  /** metric -> its value as the wire's decimal string. */
  metrics: ReadonlyMap<string, string>;
  asOfNs: bigint;
  /** In the screen's first top_n: its symbols. */
  inTop: boolean;
}

/** "rank", "symbol", "score", or a metric's name. */
export type SortKey = string;

export function rowsOf(result: ScreenResult): ResultRow[] {
  return result.ranked.map((r) => ({
    rank: r.rank,
    symbol: r.symbol,
    score: r.score,
    metrics: new Map(r.metrics.map((m) => [m.metric, m.value])),
    asOfNs: r.asOfNs,
    inTop: r.rank <= result.topN,
  }));
}

/** The metric columns: those the result's rows carry, in the order the screener writes them. */
export function metricColumns(result: ScreenResult | undefined): string[] {
  const seen: string[] = [];
  for (const row of result?.ranked ?? []) {
    for (const m of row.metrics) if (!seen.includes(m.metric)) seen.push(m.metric);
  }
  return seen;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The value a row sorts by (null: it has none). */
function sortValue(row: ResultRow, key: SortKey): number | string | null {
  if (key === "rank") return row.rank;
  if (key === "symbol") return row.symbol;
  if (key === "score") return row.score;
  const text = row.metrics.get(key);
  const value = text === undefined ? Number.NaN : Number(text);
  return Number.isFinite(value) ? value : null;
}

export function sortRows(rows: readonly ResultRow[], key: SortKey, descending: boolean): ResultRow[] {
  const sign = descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    if (x === null || y === null) return x === y ? a.rank - b.rank : x === null ? 1 : -1;
    const order = typeof x === "string" ? compareText(x, String(y)) : x - Number(y);
    return sign * order || a.rank - b.rank;
  });
}

/** A metric's value as shown: money rounded to the cent ("1,234,567.89"), any other metric (a
 * ratio, a rate, a statistic) as the wire spelled it; "–" when the row has none. */
export function metricText(metric: string, value: string | undefined): string {
  if (value === undefined || value === "") return "–";
  return MONEY_METRICS.has(metric) ? amountText(value, QUOTE) : value;
}

/** True for a metric that is money (shown rounded, its exact value on hover). */
export function isMoneyMetric(metric: string): boolean {
  return MONEY_METRICS.has(metric);
}

/** "1m" of a wire timeframe. */
export function timeframeText(timeframe: number): string {
  return TIMEFRAMES.find((option) => option.value === timeframe)?.label ?? String(timeframe);
}

/** "every 60 s" / "every 5 min" / "every 2 h". */
export function cadenceText(seconds: number): string {
  if (seconds % 3600 === 0) return `every ${seconds / 3600} h`;
  if (seconds % 60 === 0) return `every ${seconds / 60} min`;
  return `every ${seconds} s`;
}

/** "momentum × 1, volatility × -0.25" */
export function weightsText(screen: ScreenDefinition): string {
  return (screen.score?.weights ?? []).map((w) => `${w.metric} × ${w.weight}`).join(", ");
}

/** What a universe limit says, or "any" when it sets none. */
export function listText(values: readonly string[], none = "any"): string {
  return values.length === 0 ? none : values.join(", ");
}
