// A position row's margin cells (Trading, Risk, Accounts): leverage and margin mode, margin ratio,
// liquidation price and the distance to it, coloured by its tone (lib/margin: safe above 20 %,
// near from 5 % to 20 %, danger below 5 %). Empty cells for a spot position. Each cell carries
// its exact figure in data attributes, which tools and tests read; and the liquidation badge of
// an execution the venue made to liquidate a position (Order.liquidation, Fill.liquidation).
import {
  LIQUIDATION_DANGER_BELOW,
  LIQUIDATION_SAFE_ABOVE,
  type LiquidationTone,
  type MarginFigures,
  marginShown,
  percentText,
} from "../lib/margin";
import { price } from "../lib/money";
import { h } from "./dom";

/** The header of the margin cells, in their order. */
export const MARGIN_COLUMNS = ["lev.", "margin ratio", "liq. price", "to liq."] as const;

const TONE_WORDS: Record<LiquidationTone, string> = {
  safe: `more than ${percentText(LIQUIDATION_SAFE_ABOVE, 0)} from liquidation`,
  near: `${percentText(LIQUIDATION_DANGER_BELOW, 0)} to ${percentText(LIQUIDATION_SAFE_ABOVE, 0)} from liquidation`,
  danger: `less than ${percentText(LIQUIDATION_DANGER_BELOW, 0)} from liquidation, or past it`,
};

/** The four margin cells of a position (`tick`: its market's tick size, undefined when not known). */
export function marginCells(f: MarginFigures, tick: string | undefined): HTMLElement[] {
  const shown = marginShown(f);
  // The exact figures behind what is shown (none where nothing is: spot, flat).
  const leverage = shown.leverage === "" ? "" : f.leverage;
  const ratio = shown.marginRatio === "" ? "" : f.marginRatio;
  const mode = shown.marginMode === "" ? null : h("span", { class: "margin-mode" }, ` ${shown.marginMode}`);
  const toLiquidation =
    shown.tone === null
      ? {}
      : {
          "data-tone": shown.tone,
          title: `${TONE_WORDS[shown.tone]}: |mark ${f.mark} - liquidation ${f.liquidationPrice}| / mark = ${shown.distance}`,
        };
  return [
    h(
      "td",
      { class: "num", "data-col": "leverage", "data-leverage": leverage, "data-margin-mode": shown.marginMode },
      shown.leverage,
      mode,
    ),
    h(
      "td",
      { class: "num", "data-col": "margin-ratio", "data-margin-ratio": ratio, title: ratio || undefined },
      shown.marginRatio,
    ),
    h(
      "td",
      { class: "num", "data-col": "liquidation", "data-liquidation-price": shown.liquidationPrice },
      shown.liquidationPrice === "" ? null : price(shown.liquidationPrice, tick),
    ),
    h(
      "td",
      { class: "num liquidation-distance", "data-col": "liquidation-distance", "data-distance": shown.distance, ...toLiquidation },
      shown.distanceText,
    ),
  ];
}

/** The badge of an order or fill by which the venue liquidated a position; with `traceId` (the
 * liquidation order's client order id, "liq-..."), a click opens that order's trace (its fills
 * and their transfers: ledger/trace), which a fill id shared by several venues' sims cannot. */
export function liquidationBadge(traceId = ""): HTMLElement {
  const why = "the venue closed (part of) the position by liquidation, at its bankruptcy price; the fee is its liquidation fee";
  const attributes =
    traceId === ""
      ? { class: "badge liquidation", "data-liquidation": "true", title: why }
      : { class: "badge liquidation", "data-liquidation": "true", "data-trace-id": traceId, title: `${why} (trace ${traceId})` };
  return h("span", attributes, "liquidation");
}
