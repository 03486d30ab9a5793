// How close a measured value is to its limit (GetRiskState's gauges, GetPolicies' status), as
// the Risk page shows it: the fraction used, and whether that is near the limit.
import { forDrawing } from "../lib/decimal";
import { amountText } from "../lib/money";

/** From this fraction of its limit on, a value is shown as near it. */
export const NEAR_LIMIT = 0.8;

/** value / limit as a number for display (null when there is no limit or no value). */
export function used(value: string, limit: string): number | null {
  if (value === "" || limit === "") return null;
  const a = Math.abs(forDrawing(value));
  const b = forDrawing(limit);
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : null;
}

/** True when a fraction used (a number, or the inspector's decimal text) is near its limit. */
export function nearLimit(fraction: number | string | null): boolean {
  if (fraction === null || fraction === "") return false;
  const value = typeof fraction === "number" ? fraction : forDrawing(fraction);
  return Number.isFinite(value) && value >= NEAR_LIMIT;
}

/** A fraction as a percentage: "12.5%" ("–" when none). */
export function percent(fraction: string | number | null): string {
  if (fraction === null || fraction === "") return "–";
  const value = typeof fraction === "number" ? fraction : forDrawing(fraction);
  if (!Number.isFinite(value)) return "–";
  const text = (value * 100).toFixed(Math.abs(value) < 0.1 ? 2 : 1);
  // A tiny negative (equity a hair above the day's open) is shown as zero, not "-0.00%".
  return `${/^-0\.0+$/.test(text) ? text.slice(1) : text}%`;
}

/** The policies whose limit and value are fractions (0.05 is 5%), shown as percentages. */
const FRACTION_POLICIES = new Set(["loss.max_drawdown", "loss.max_daily_drawdown", "orders.price_band"]);

/** The policies whose limit and value are money in the quote asset (notional, exposure, capital). */
const MONEY_POLICY = /notional|^exposure\.|^capital\.|\.max_gross$/;

/** A policy's limit or value as the page shows it: a percentage for a fraction policy, money
 * rounded (lib/money) for a notional one, else as the inspector sent it. */
export function policyValue(key: string, text: string): string {
  if (text === "") return "–";
  if (FRACTION_POLICIES.has(key)) return percent(text);
  return MONEY_POLICY.test(key) ? amountText(text) : text;
}

/** What is left of a cooldown ending at `untilNs`: "" when none runs, else "1 m 05 s". */
export function cooldownLeft(untilNs: bigint, nowMs: number): string {
  if (untilNs === 0n) return "";
  const leftMs = Number(untilNs / 1_000_000n) - nowMs;
  if (leftMs <= 0) return "";
  const seconds = Math.ceil(leftMs / 1000);
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes} m ${String(seconds % 60).padStart(2, "0")} s` : `${seconds} s`;
}
