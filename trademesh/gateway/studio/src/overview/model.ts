// The regime board as plain data (docs/overwatch.md): every market's regime as Overwatch's
// StreamRegimes tells it, the board first, then each change, kept per (venue, symbol, timeframe);
// sorted and filtered as the operator asks. A change carries the market's figures as of the bar
// that confirmed it, so a market's figures are those of its board or its last change.
import { Timeframe } from "../gen/trademesh/common/v1/common_pb";
import {
  type Board,
  type Features,
  type MarketRegime,
  Regime,
  type RegimeChange,
  type StreamRegimesResponse,
} from "../gen/trademesh/overwatch/v1/overwatch_pb";
import { TIMEFRAMES } from "../market/timeframes";

/** How a regime is shown: its word (as the MCP tool and the Python enum name it: "trend_up"),
 * a label and a glyph, so it reads without its colour. */
export interface RegimeLook {
  word: string;
  label: string;
  glyph: string;
  meaning: string;
}

const LOOKS: Record<number, RegimeLook> = {
  [Regime.UNKNOWN]: { word: "unknown", label: "unknown", glyph: "…", meaning: "warming up: too few bars yet" },
  [Regime.TREND_UP]: { word: "trend_up", label: "trend up", glyph: "▲", meaning: "ADX high, +DI leading" },
  [Regime.TREND_DOWN]: { word: "trend_down", label: "trend down", glyph: "▼", meaning: "ADX high, -DI leading" },
  [Regime.RANGE]: { word: "range", label: "range", glyph: "↔", meaning: "no direction, ordinary volatility and volume" },
  [Regime.HIGH_VOLATILITY]: {
    word: "high_volatility",
    label: "high volatility",
    glyph: "≈",
    meaning: "realised volatility well above its long-run level",
  },
  [Regime.THIN_LIQUIDITY]: {
    word: "thin_liquidity",
    label: "thin liquidity",
    glyph: "◌",
    meaning: "volume well below its long-run level",
  },
};

/** Every regime a market can be in, in the legend's order. */
export const REGIMES: readonly Regime[] = [
  Regime.TREND_UP,
  Regime.TREND_DOWN,
  Regime.RANGE,
  Regime.HIGH_VOLATILITY,
  Regime.THIN_LIQUIDITY,
  Regime.UNKNOWN,
];

export function regimeLook(regime: Regime): RegimeLook {
  return LOOKS[regime] ?? { word: "unspecified", label: "unspecified", glyph: "?", meaning: "no regime given" };
}

/** "1m" of TIMEFRAME_1_MINUTE. */
export function timeframeLabel(timeframe: Timeframe): string {
  return TIMEFRAMES.find((option) => option.value === timeframe)?.label ?? String(timeframe);
}

/** One row of the board. */
export interface MarketRow {
  venue: string;
  symbol: string;
  timeframe: Timeframe;
  regime: Regime;
  sinceNs: bigint;
  features: Features | undefined;
  /** Closed bars read (the board's count; a change does not carry it). */
  bars: bigint;
  lastBarNs: bigint;
  updatedNs: bigint;
  /** Changes seen live since the board (0: as the board had it). */
  changes: number;
}

export type SortKey = "market" | "regime" | "since" | "adx" | "vol_ratio" | "volume_ratio";
export const SORT_KEYS: readonly SortKey[] = ["market", "regime", "since", "adx", "vol_ratio", "volume_ratio"];

function keyOf(venue: string, symbol: string, timeframe: Timeframe): string {
  return `${venue}\u0000${symbol}\u0000${timeframe}`;
}

function fromBoard(market: MarketRegime): MarketRow {
  return {
    venue: market.venue,
    symbol: market.symbol,
    timeframe: market.timeframe,
    regime: market.regime,
    sinceNs: market.sinceNs,
    features: market.features,
    bars: market.bars,
    lastBarNs: market.lastBarNs,
    updatedNs: market.updatedNs,
    changes: 0,
  };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareMarket(a: MarketRow, b: MarketRow): number {
  return compareText(a.venue, b.venue) || compareText(a.symbol, b.symbol) || a.timeframe - b.timeframe;
}

function figure(row: MarketRow, key: "adx" | "vol_ratio" | "volume_ratio"): number {
  const features = row.features;
  if (features === undefined) return Number.NEGATIVE_INFINITY;
  return key === "adx" ? features.adx : key === "vol_ratio" ? features.volRatio : features.volumeRatio;
}

function compareBy(key: SortKey, a: MarketRow, b: MarketRow): number {
  switch (key) {
    case "market":
      return 0;
    case "regime":
      return compareText(regimeLook(a.regime).label, regimeLook(b.regime).label);
    case "since":
      return a.sinceNs < b.sinceNs ? -1 : a.sinceNs > b.sinceNs ? 1 : 0;
    default:
      return figure(a, key) - figure(b, key);
  }
}

export class RegimeBoard {
  private readonly markets = new Map<string, MarketRow>();
  asOfNs = 0n;
  /** Messages taken since the last board, the board included (0: nothing yet). */
  updates = 0;

  /** Takes one StreamRegimes message: a board replaces every row, a change updates its market's. */
  take(message: StreamRegimesResponse): void {
    const event = message.event;
    if (event.case === "board") this.takeBoard(event.value);
    else if (event.case === "change") this.takeChange(event.value);
  }

  takeBoard(board: Board): void {
    this.markets.clear();
    for (const market of board.markets) {
      this.markets.set(keyOf(market.venue, market.symbol, market.timeframe), fromBoard(market));
    }
    this.asOfNs = board.asOfNs;
    this.updates = 1;
  }

  /** Takes a board read apart from the stream (GetBoard: the figures and bar counts of markets
   * whose regime did not change, which the stream does not send): a market's entry is taken
   * unless the row already has a later bar (a change the stream sent after that board). */
  refresh(board: Board): void {
    for (const market of board.markets) {
      const key = keyOf(market.venue, market.symbol, market.timeframe);
      const known = this.markets.get(key);
      if (known !== undefined && market.updatedNs < known.updatedNs) continue;
      this.markets.set(key, { ...fromBoard(market), changes: known?.changes ?? 0 });
    }
  }

  takeChange(change: RegimeChange): void {
    const key = keyOf(change.venue, change.symbol, change.timeframe);
    const known = this.markets.get(key);
    this.markets.set(key, {
      venue: change.venue,
      symbol: change.symbol,
      timeframe: change.timeframe,
      regime: change.regime,
      sinceNs: change.sinceNs,
      features: change.features,
      bars: known?.bars ?? 0n,
      lastBarNs: change.atBarNs,
      updatedNs: change.atNs,
      changes: (known?.changes ?? 0) + 1,
    });
    this.updates += 1;
  }

  /** The venues on the board, sorted. */
  venues(): string[] {
    return [...new Set([...this.markets.values()].map((m) => m.venue))].sort(compareText);
  }

  /** The rows of `venue` (every venue when null), sorted by `key` (then by market), descending
   * when `descending`. */
  rows(venue: string | null, key: SortKey, descending: boolean): MarketRow[] {
    const shown = [...this.markets.values()].filter((m) => venue === null || m.venue === venue);
    const sign = descending ? -1 : 1;
    return shown.sort((a, b) => sign * compareBy(key, a, b) || compareMarket(a, b));
  }
}
