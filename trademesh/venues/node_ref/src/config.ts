// node-ref's static facts: its name, its instruments, its account, its market's pace and its
// limits, readable at a glance. Every number a request is held to is here.

import { Dec, dec } from "./decimal.js";

export const VENUE = "node-ref";
// How the venue's process is named in its serving line and logs ("venue/sim" for the sim).
export const SERVICE_LABEL = `venue/${VENUE}`;
export const DEFAULT_PORT = 5095;
export const DEFAULT_SEED = 7n;

export interface SymbolSpec {
  // Canonical (ccxt unified) symbol, and the venue's own name for it.
  readonly symbol: string;
  readonly native: string;
  readonly base: string;
  readonly quote: string;
  readonly tickSize: Dec;
  readonly lotSize: Dec;
  readonly minSize: Dec;
  readonly minNotional: Dec;
  // Where the seeded market starts (a multiple of the tick).
  readonly startPrice: Dec;
  // The market's own flow: its makers' and takers' pace and sizes.
  readonly volatilityPerSqrtS: number;
  readonly tradesPerS: number;
  readonly bookUpdatesPerS: number;
  readonly depthLevels: number;
  readonly levelSpacingTicks: bigint;
  readonly makerSizeLots: number;
  readonly takerSizeLots: number;
}

// Two spot pairs, as the sim lists them (BTC/USDT and ETH/USDT), under native names of the
// venue's own form (BTC-USDT) so the native <-> canonical mapping is visible.
//
// The market is tuned as the sim's demo market is (trademesh/venues/sim/demo.toml), so that the mesh's
// advisor, on 1m bars, passes a strategy's signals here as it does there:
// - Liquid levels: makers' orders of 0.5 BTC (6 ETH) on average, up to 8 a level, levels 1 USDT
//   (0.2 USDT) apart: the advisor counts a best level worth under 1,000 USDT as a thin book (0.3
//   off its quality score, which a fresh mesh's backfilled bars already lower by 0.25). With
//   orders of 0.002 BTC every best level was thin; now 3% (BTC) and 5% (ETH) of the seconds.
// - Volatility 0.03% a second (0.23% a minute): a 1m bar's true range (about 0.33%) is several
//   times a round trip's fees, so the advisor's stop (1.5 ATRs) and target (2.5 ATRs) pay them
//   (at 0.01% a second, a 1m ATR of about 0.1%, every signal was blocked as within the fees).
export const SYMBOLS: readonly SymbolSpec[] = [
  {
    symbol: "BTC/USDT",
    native: "BTC-USDT",
    base: "BTC",
    quote: "USDT",
    tickSize: dec("0.01"),
    lotSize: dec("0.00001"),
    minSize: dec("0.00001"),
    minNotional: dec("5"),
    startPrice: dec("65000"),
    volatilityPerSqrtS: 0.0003,
    tradesPerS: 5,
    bookUpdatesPerS: 100,
    depthLevels: 20,
    levelSpacingTicks: 100n,
    makerSizeLots: 50_000,
    takerSizeLots: 5_000,
  },
  {
    symbol: "ETH/USDT",
    native: "ETH-USDT",
    base: "ETH",
    quote: "USDT",
    tickSize: dec("0.01"),
    lotSize: dec("0.0001"),
    minSize: dec("0.0001"),
    minNotional: dec("5"),
    startPrice: dec("3500"),
    volatilityPerSqrtS: 0.0003,
    tradesPerS: 5,
    bookUpdatesPerS: 100,
    depthLevels: 20,
    levelSpacingTicks: 20n,
    makerSizeLots: 60_000,
    takerSizeLots: 6_000,
  },
];

// The account's balances at start, and the fees it pays (fractions of the notional, in the quote):
// a liquid spot venue's (0.02% maker, 0.05% taker). At 0.1% / 0.2% a round trip cost more than a
// minute's move, and the advisor blocked every signal for its fees.
export const BALANCES: ReadonlyArray<readonly [string, Dec]> = [
  ["BTC", dec("10")],
  ["ETH", dec("100")],
  ["USDT", dec("1000000")],
];
export const MAKER_FEE_RATE = dec("0.0002");
export const TAKER_FEE_RATE = dec("0.0005");

// A limit price must lie within [reference / ratio, reference * ratio] (Binance's PERCENT_PRICE).
export const PRICE_BAND_RATIO = dec("5");
// Closed orders kept for GetOrder and client_order_id idempotency, the oldest dropped first.
export const CLOSED_ORDERS_KEPT = 10_000;

// The market moves in fixed steps (the tests' sims' pace: a fifth of the product sim's wake-ups).
export const STEP_MS = 50;
export const TICKER_INTERVAL_MS = 250;
export const CANDLE_INTERVAL_MS = 1000;
// Market played before the venue opens (only its candles are kept), so GetCandles has a past: 20
// minutes, as the sim's demo market plays, so a mesh's bar service backfills the advisor's 1m
// bars past ATR(14)'s 15 and its model's 21 at once (about 1 s to play).
export const DEFAULT_HISTORY_S = 1200;
export const MAX_HISTORY_S = 3600;

// Streams: what a subscriber may have queued, and what the venue keeps for those that resume.
export const MARKET_QUEUE_BATCHES = 256;
export const JOIN_MOST = 64;
export const JOIN_BYTES = 1 << 20;
export const RESUME_WINDOW_S = 120;
export const RESUME_MAX_BYTES = 64 * 1024 * 1024;
export const REPLAY_MESSAGE_BYTES = 4 * 1024 * 1024;
export const EXECUTION_QUEUE = 10_000;
export const EXECUTION_HISTORY = 50_000;
export const EXECUTION_BATCH_MAX = 500;
export const ACCOUNT_QUEUE = 1000;

// Requests: the largest the server takes (bytes, before decoding), string and list bounds (the
// Python services' edge: trademesh/core/platform/rpc/server.py and limits.py).
export const MAX_REQUEST_BYTES = 1024 * 1024;
export const MAX_SEND_BYTES = 64 * 1024 * 1024;
export const MAX_STRING_CHARS = 256;
export const MAX_ITEMS = 10_000;
export const MAX_DEPTH = 16;

// The dead-man switch's ttl bounds (0 disarms).
export const MIN_TTL_MS = 1_000;
export const MAX_TTL_MS = 3_600_000;

// GetCandles: at most this many a page, this many when the request says 0.
export const MAX_CANDLES = 5000;
export const DEFAULT_CANDLES = 1000;
export const MAX_FUNDING_PAYMENTS = 1000;

// Secrets come from the environment only; their names, never their values, appear in messages.
export const ENV = {
  token: "TRADEMESH_TOKEN",
  tradeToken: "TRADEMESH_TRADE_TOKEN",
  gateway: "TRADEMESH_GATEWAY",
  advertiseHost: "TRADEMESH_ADVERTISE_HOST",
  drainDelayS: "TRADEMESH_DRAIN_DELAY_S",
} as const;

// After SIGTERM: health NOT_SERVING this long (unless TRADEMESH_DRAIN_DELAY_S), then in-flight
// calls get the grace period.
export const DRAIN_DELAY_S = 0.5;
export const GRACE_S = 5;
