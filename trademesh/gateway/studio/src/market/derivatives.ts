// A derivative's live figures on the trading page (docs/studio.md, "Studio: derivatives"): its mark
// and index prices, its funding rate and next funding time (perpetuals), its open interest, from
// the bridge's KIND_MARK, KIND_FUNDING and KIND_OPEN_INTEREST events (docs/derivatives.md). The
// venue states each as a state, not as changes: the latest event holds. A mark comes on both the
// mark stream and the funding stream (the funding's mark, which a venue may state less often): the
// later one by the venue's clock holds, so a funding event never puts back an older mark. A figure
// the venue does not state stays "" (shown only when present).
import { InstrumentKind } from "../gen/trademesh/common/v1/common_pb";
import type { MarketEvent } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import { roundDecimal } from "../lib/money";

/** What the strip shows; "" (or 0n) where the venue has not said. */
export interface DerivativeFigures {
  mark: string;
  index: string;
  fundingRate: string;
  /** When the rate is paid (ns since the Unix epoch); 0n when not said. */
  nextFundingNs: bigint;
  openInterest: string;
  /** The open interest in the quote asset; "" when not said. */
  openInterestValue: string;
}

export function noFigures(): DerivativeFigures {
  return { mark: "", index: "", fundingRate: "", nextFundingNs: 0n, openInterest: "", openInterestValue: "" };
}

/** True for the instruments that have derivatives streams (perpetuals, futures, options). */
export function isDerivative(kind: InstrumentKind): boolean {
  return kind !== InstrumentKind.SPOT && kind !== InstrumentKind.UNSPECIFIED;
}

export class DerivativesState {
  readonly figures = noFigures();
  private markTsNs = -1n;
  private indexTsNs = -1n;

  /** Applies one event; true when it was a derivatives figure (mark, funding, open interest). */
  apply(event: MarketEvent): boolean {
    const payload = event.payload;
    switch (payload.case) {
      case "markPrice":
        this.prices(event.tsEventNs, payload.value.markPrice, payload.value.indexPrice);
        return true;
      case "fundingRate":
        this.figures.fundingRate = payload.value.rate;
        this.figures.nextFundingNs = payload.value.nextFundingNs;
        this.prices(event.tsEventNs, payload.value.markPrice, payload.value.indexPrice);
        return true;
      case "openInterest":
        this.figures.openInterest = payload.value.size;
        this.figures.openInterestValue = payload.value.value;
        return true;
      default:
        return false;
    }
  }

  private prices(tsNs: bigint, mark: string, index: string): void {
    if (mark !== "" && tsNs >= this.markTsNs) {
      this.figures.mark = mark;
      this.markTsNs = tsNs;
    }
    if (index !== "" && tsNs >= this.indexTsNs) {
      this.figures.index = index;
      this.indexTsNs = tsNs;
    }
  }
}

// A funding rate is a small fraction (0.0001 is 0.01 %): shown as a percentage to 4 decimals.
export const FUNDING_PLACES = 4;

/** A funding rate as a percentage: "0.0001" -> "0.0100%", "-0.00025" -> "-0.0250%"; "" when
 * empty; the text itself when it is not a decimal (never through a float). */
export function fundingRateText(rate: string): string {
  if (rate === "") return "";
  if (!/^-?\d+(\.\d+)?$/.test(rate)) return rate;
  const negative = rate.startsWith("-");
  const [whole = "0", part = ""] = (negative ? rate.slice(1) : rate).split(".");
  const padded = part.padEnd(2, "0");
  const shifted = `${whole}${padded.slice(0, 2)}.${padded.slice(2) || "0"}`.replace(/^0+(?=\d)/, "");
  const rounded = roundDecimal(shifted, FUNDING_PLACES);
  return `${negative && /[1-9]/.test(rounded) ? "-" : ""}${rounded}%`;
}

/** How long until a time, for the next funding: "in 42 s", "in 17 min", "in 2 h 05 min"; "now"
 * once it has passed. */
export function untilText(atNs: bigint, nowMs: number): string {
  const seconds = Math.round((Number(atNs / 1_000_000n) - nowMs) / 1000);
  if (seconds <= 0) return "now";
  if (seconds < 60) return `in ${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `in ${minutes} min`;
  return `in ${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
