// What the Backtest page shows of a run, as plain data: its status as a word, its range and
// options as text, the metrics (their labels, their values as shown and as sent), and the times
// of the form's UTC inputs. Money and the fractions computed from money stay decimal strings;
// they become numbers only to be shown as percentages or drawn.
import { type BacktestOptions, type Metrics, RunStatus } from "../gen/trademesh/backtest/v1/backtest_pb";
import { forDrawing } from "../lib/decimal";
import { label } from "../lib/format";
import { amountText } from "../lib/money";
import { barsText } from "./bars";

const NS_PER_MS = 1_000_000n;

/** "running", "done", "failed", "cancelled" ("" when not known). */
export function statusName(status: RunStatus): string {
  return status === RunStatus.UNSPECIFIED ? "" : label(RunStatus, status);
}

/** True once a run has ended (done, failed or cancelled). */
export function ended(status: RunStatus): boolean {
  return status === RunStatus.DONE || status === RunStatus.FAILED || status === RunStatus.CANCELLED;
}

/** ns since the epoch as "2026-11-23 14:05:09 UTC" ("–" for none). */
export function utcSeconds(tsNs: bigint): string {
  if (tsNs <= 0n) return "–";
  const iso = new Date(Number(tsNs / NS_PER_MS)).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

/** The value of a datetime-local input read as UTC, "2026-11-23T14:05:09" (to the second). */
export function utcInputValue(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);
}

/** A datetime-local input's value read as UTC: ns since the epoch, null when it is not a time. */
export function parseUtcInput(value: string): bigint | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/.test(value)) return null;
  const ms = Date.parse(`${value}Z`);
  return Number.isFinite(ms) ? BigInt(ms) * NS_PER_MS : null;
}

/** "14:05:09 → 15:05:09 (1 h)": a run's range, the dates shown once when it is within a day. */
export function rangeText(options: BacktestOptions | undefined): string {
  if (options === undefined || options.endNs <= 0n) return "–";
  const from = utcSeconds(options.startNs);
  const to = utcSeconds(options.endNs);
  const sameDay = from.slice(0, 10) === to.slice(0, 10);
  return `${from.replace(" UTC", "")} → ${sameDay ? to.slice(11) : to} (${span(options.endNs - options.startNs)})`;
}

/** A duration in ns as "90 s", "12 min", "3.5 h", "2.0 d". */
export function span(ns: bigint): string {
  const s = Number(ns / 1_000_000_000n);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86_400).toFixed(1)} d`;
}

/** "3 s", "4 min 10 s": the ETA ("–" when not known yet, eta < 0). */
export function eta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  const s = Math.round(seconds);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** A run's options as one line: strategies, venue, symbols, the bars its sources ran on (when
 * not their own), latencies (recorded: each order at its live twin's arrival, the model's delays
 * for the rest), the LLM when recorded. */
export function optionsText(options: BacktestOptions | undefined): string {
  if (options === undefined) return "";
  const parts = [options.strategies.join(", "), options.venue || "sim"];
  if (options.symbols.length > 0) parts.push(options.symbols.join(", "));
  if (options.bars) parts.push(barsText(options.bars));
  const model = `${options.orderLatencyMs || "20"}/${options.reportLatencyMs || "20"} ms`;
  parts.push(options.latency === "recorded" ? `latency recorded (else ${model})` : `latency ${model}`);
  if (options.llm === "recorded") parts.push("LLM recorded");
  return parts.join(" · ");
}

/** A fraction as a percentage with 2 decimals: "0.0123" -> "1.23%". */
export function percent(fraction: string | number): string {
  const value = typeof fraction === "number" ? fraction : forDrawing(fraction);
  if (fraction === "" || !Number.isFinite(value)) return "–";
  return `${(value * 100).toFixed(2)}%`;
}

/** A ratio (Sharpe, Sortino, Calmar) with 2 decimals; "∞" past any number. */
export function ratio(value: number | undefined): string {
  if (value === undefined) return "–";
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "–" : value > 0 ? "∞" : "−∞";
  return value.toFixed(2);
}

/** "pos", "neg" or "" (zero): the class a signed figure is shown with. */
export function tone(value: string | number): string {
  const n = typeof value === "number" ? value : forDrawing(value);
  return n > 0 ? "pos" : n < 0 ? "neg" : "";
}

export interface Figure {
  /** The metric's field ("total_return"), for data attributes. */
  key: string;
  label: string;
  /** As shown. */
  text: (m: Metrics) => string;
  /** As sent (a decimal string, or the double as text). */
  raw: (m: Metrics) => string;
  /** Signed figures are coloured by their sign. */
  signed?: boolean;
  /** Money (rounded for display, lib/money): its exact value on hover. */
  money?: boolean;
}

/** Every figure of a Metrics, in the order the tables show them. */
export const FIGURES: readonly Figure[] = [
  {
    key: "total_return",
    label: "total return",
    text: (m) => percent(m.totalReturn),
    raw: (m) => m.totalReturn,
    signed: true,
  },
  { key: "cagr", label: "CAGR", text: (m) => percent(m.cagr), raw: (m) => String(m.cagr), signed: true },
  { key: "sharpe", label: "Sharpe", text: (m) => ratio(m.sharpe), raw: (m) => String(m.sharpe), signed: true },
  { key: "sortino", label: "Sortino", text: (m) => ratio(m.sortino), raw: (m) => String(m.sortino), signed: true },
  { key: "max_drawdown", label: "max drawdown", text: (m) => percent(m.maxDrawdown), raw: (m) => m.maxDrawdown },
  { key: "calmar", label: "Calmar", text: (m) => ratio(m.calmar), raw: (m) => String(m.calmar) },
  { key: "win_rate", label: "win rate", text: (m) => percent(m.winRate), raw: (m) => String(m.winRate) },
  {
    key: "profit_factor",
    label: "profit factor",
    text: (m) => (m.profitFactor === undefined ? "no loss" : ratio(m.profitFactor)),
    raw: (m) => (m.profitFactor === undefined ? "" : String(m.profitFactor)),
  },
  { key: "exposure", label: "exposure", text: (m) => percent(m.exposure), raw: (m) => String(m.exposure) },
  { key: "turnover", label: "turnover", text: (m) => ratio(m.turnover), raw: (m) => String(m.turnover) },
  { key: "fees", label: "fees", text: (m) => amountText(m.fees), raw: (m) => m.fees, money: true },
  { key: "trades", label: "trades", text: (m) => String(m.trades), raw: (m) => String(m.trades) },
  {
    key: "start_equity",
    label: "start equity",
    text: (m) => amountText(m.startEquity),
    raw: (m) => m.startEquity,
    money: true,
  },
  { key: "end_equity", label: "end equity", text: (m) => amountText(m.endEquity), raw: (m) => m.endEquity, money: true },
];

/** The account's figures first-class: "total" last, the strategies by name before it. */
export function strategiesFirst<T extends { strategy: string }>(items: readonly T[]): T[] {
  const rank = (item: T): string => (item.strategy === "total" ? "\u{10FFFF}" : item.strategy);
  return [...items].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0));
}
