// A derivatives position's margin figures as Studio shows them (Trading, Risk and Accounts:
// docs/studio.md, "Studio: margin and liquidation"): leverage ("10×"), the margin ratio as a
// percentage (maintenance margin / margin balance: 100% is liquidation), the liquidation price,
// and the distance to it, |mark - liquidation| / mark, with its tone: safe above 20 %, near from
// 5 % to 20 %, danger below 5 % (or with the mark at or past the liquidation price). All of it
// on the wire's decimal text (never through a float), so a spot position, whose fields are
// empty, shows nothing, and a figure that is not a decimal is never "NaN".
import type { PositionView } from "../gen/trademesh/risk/v1/inspector_pb";
import { MarginMode, type Position } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { canonical, compareDecimal, isDecimal, subtractDecimal } from "./decimal";
import { roundDecimal, trimZeros } from "./money";

/** A distance to liquidation above this fraction of the mark is safe (shown green). */
export const LIQUIDATION_SAFE_ABOVE = "0.2";
/** Below this fraction it is in danger (red); from it up to LIQUIDATION_SAFE_ABOVE, near (amber). */
export const LIQUIDATION_DANGER_BELOW = "0.05";
/** The decimals a distance is reckoned to (a millionth of the mark). */
export const DISTANCE_PLACES = 6;
/** The decimals of a percentage shown (a distance, a margin ratio). */
export const PERCENT_PLACES = 1;

/** How near a position is to its liquidation: safe, near or in danger. */
export type LiquidationTone = "safe" | "near" | "danger";

/** The figures a position row shows, from either TradeFlow's Position or the inspector's
 * PositionView (empty text: the venue did not say, or a spot position). */
export interface MarginFigures {
  size: string;
  mark: string;
  leverage: string;
  marginMode: MarginMode;
  marginRatio: string;
  liquidationPrice: string;
  /** The distance as the inspector reckoned it (PositionView.liquidation_distance); "" to reckon it here. */
  distance: string;
}

const SIGNED = /^-?\d+(\.\d+)?$/;

function isSigned(text: string): boolean {
  return SIGNED.test(text);
}

/** A venue's position (TradeFlow.GetPositions, StreamAccount). */
export function fromPosition(p: Position): MarginFigures {
  return {
    size: p.size,
    mark: p.markPrice,
    leverage: p.leverage,
    marginMode: p.marginMode,
    marginRatio: p.marginRatio,
    liquidationPrice: p.liquidationPrice,
    distance: "",
  };
}

/** The inspector's view of a position (Inspector.ListPositions). */
export function fromView(v: PositionView): MarginFigures {
  return {
    size: v.size,
    mark: v.mark,
    leverage: v.leverage,
    marginMode: v.marginMode,
    marginRatio: v.marginRatio,
    liquidationPrice: v.liquidationPrice,
    distance: v.liquidationDistance,
  };
}

/** True when the venue gave any margin figure (a derivatives position); false for spot. */
export function hasMargin(f: MarginFigures): boolean {
  return f.leverage !== "" || f.marginRatio !== "" || f.liquidationPrice !== "";
}

/** "12.5" -> "12.5×", "10.00" -> "10×"; "" for none; text that is not a decimal as it is. */
export function leverageText(leverage: string): string {
  if (leverage === "") return "";
  return isSigned(leverage) ? `${trimZeros(canonical(leverage))}×` : leverage;
}

/** "cross", "isolated", or "" when the venue did not say. */
export function marginModeWord(mode: MarginMode): string {
  if (mode === MarginMode.CROSS) return "cross";
  if (mode === MarginMode.ISOLATED) return "isolated";
  return "";
}

/** 10^places as a bigint. */
function power(places: number): bigint {
  return 10n ** BigInt(places);
}

/** A decimal text as an integer of its digits and its scale ("-1.25" -> [-125n, 2]). */
function scaled(text: string): [bigint, number] {
  const negative = text.startsWith("-");
  const [whole = "0", fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const digits = BigInt(whole + fraction);
  return [negative ? -digits : digits, fraction.length];
}

/** a / b rounded half away from zero to `places` decimals, exact, in canonical spelling; null
 * when either is not a decimal or b is zero. */
export function divideDecimal(a: string, b: string, places: number): string | null {
  if (!isSigned(a) || !isSigned(b)) return null;
  const [na, sa] = scaled(a);
  const [nb, sb] = scaled(b);
  if (nb === 0n) return null;
  // a / b = (na / 10^sa) / (nb / 10^sb); times 10^places, doubled to round on the last digit.
  const numerator = na * power(sb + places) * 2n;
  const denominator = nb * power(sa);
  const negative = numerator < 0n !== denominator < 0n;
  const abs = (x: bigint): bigint => (x < 0n ? -x : x);
  const halves = abs(numerator) / abs(denominator);
  const rounded = (halves + 1n) / 2n; // half away from zero
  const digits = rounded.toString().padStart(places + 1, "0");
  const body = places === 0 ? digits : `${digits.slice(0, -places)}.${digits.slice(-places)}`;
  return canonical(negative ? `-${body}` : body);
}

/** |mark - liquidation| / mark to DISTANCE_PLACES; "" when either price is missing, not a
 * decimal, negative, or the mark is zero. */
export function liquidationDistance(mark: string, liquidation: string): string {
  if (!isDecimal(mark) || !isDecimal(liquidation) || compareDecimal(mark, "0") <= 0) return "";
  const gap = subtractDecimal(mark, liquidation);
  return divideDecimal(gap.replace(/^-/, ""), mark, DISTANCE_PLACES) ?? "";
}

/** True when the mark is at or past the liquidation price on the position's losing side (a long
 * whose mark is at or below it, a short at or above it): the venue is liquidating it. */
export function pastLiquidation(f: MarginFigures): boolean {
  if (!isSigned(f.size) || !isSigned(f.mark) || !isSigned(f.liquidationPrice)) return false;
  const side = compareDecimal(f.size, "0");
  const markVsLiquidation = compareDecimal(f.mark, f.liquidationPrice);
  return (side > 0 && markVsLiquidation <= 0) || (side < 0 && markVsLiquidation >= 0);
}

/** The position's distance to liquidation: the inspector's when it gave one, else reckoned from
 * the mark and the liquidation price; "" when there is none. */
export function distanceOf(f: MarginFigures): string {
  if (f.distance !== "" && isSigned(f.distance)) return canonical(f.distance);
  return liquidationDistance(f.mark, f.liquidationPrice);
}

/** The tone of a distance (a fraction of the mark): safe above LIQUIDATION_SAFE_ABOVE, danger
 * below LIQUIDATION_DANGER_BELOW, near between (both bounds near); null for no distance. */
export function liquidationTone(distance: string, past = false): LiquidationTone | null {
  if (past) return "danger";
  if (!isSigned(distance)) return null;
  if (compareDecimal(distance, LIQUIDATION_SAFE_ABOVE) > 0) return "safe";
  return compareDecimal(distance, LIQUIDATION_DANGER_BELOW) < 0 ? "danger" : "near";
}

/** A fraction as a percentage, on its text: "0.1234" -> "12.3%", "0.0005" at 2 -> "0.05%";
 * "" for none; text that is not a decimal as it is. */
export function percentText(fraction: string, places: number = PERCENT_PLACES): string {
  if (fraction === "") return "";
  if (!isSigned(fraction)) return fraction;
  const negative = fraction.startsWith("-");
  const [whole = "0", part = ""] = (negative ? fraction.slice(1) : fraction).split(".");
  const padded = part.padEnd(2, "0");
  const shifted = `${negative ? "-" : ""}${whole}${padded.slice(0, 2)}.${padded.slice(2) || "0"}`;
  return `${roundDecimal(canonical(shifted), places)}%`;
}

/** What a position row shows of its margin: every text "" for a spot position. */
export interface MarginShown {
  leverage: string;
  marginMode: string;
  marginRatio: string;
  /** The liquidation price's exact text (the row shows it at its tick: lib/money.price). */
  liquidationPrice: string;
  /** The distance's exact text and as a percentage. */
  distance: string;
  distanceText: string;
  tone: LiquidationTone | null;
}

const NOTHING: MarginShown = {
  leverage: "",
  marginMode: "",
  marginRatio: "",
  liquidationPrice: "",
  distance: "",
  distanceText: "",
  tone: null,
};

/** What the row shows; nothing for a flat position (size 0: the venue may still state the
 * symbol's leverage in force, which is a setting, not a figure of a position). */
export function marginShown(f: MarginFigures): MarginShown {
  if (isSigned(f.size) && compareDecimal(f.size, "0") === 0) return NOTHING;
  const distance = distanceOf(f);
  return {
    leverage: leverageText(f.leverage),
    marginMode: marginModeWord(f.marginMode),
    marginRatio: percentText(f.marginRatio),
    liquidationPrice: f.liquidationPrice,
    distance,
    distanceText: percentText(distance),
    tone: liquidationTone(distance, pastLiquidation(f)),
  };
}
