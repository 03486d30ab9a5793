// The venue's domain values: what the exchange holds, in exact decimals, apart from the wire.

import type { SymbolSpec } from "./config.js";
import type { Dec } from "./decimal.js";

export type Side = "buy" | "sell";
export type OrderType = "limit" | "market";
export type TimeInForce = "gtc" | "ioc" | "fok";
// The values the Python venues' messages use ("order 12 is filled, not open").
export type OrderStatus = "open" | "partially_filled" | "filled" | "canceled" | "rejected" | "expired";
export type Liquidity = "maker" | "taker";
export type Channel = "trades" | "book" | "candles" | "tickers" | "funding";

export const CHANNELS: readonly Channel[] = ["trades", "book", "candles", "tickers", "funding"];

export function isOpen(status: OrderStatus): boolean {
  return status === "open" || status === "partially_filled";
}

export function opposite(side: Side): Side {
  return side === "buy" ? "sell" : "buy";
}

export function sign(side: Side): bigint {
  return side === "buy" ? 1n : -1n;
}

// Candle intervals, their length in seconds (the wire's Timeframe enum maps onto these).
export const TIMEFRAMES = [1, 60, 300, 900, 3600, 14400, 86400, 604800] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

// 1970-01-01 was a Thursday: weeks open Monday 00:00 UTC, 4 days later (as the exchanges' 1w
// candles and the mesh's 1w bars do); every other interval opens on a multiple of its length.
const WEEK_OFFSET_NS = 4n * 86_400n * 1_000_000_000n;

// The start of the `timeframe` interval that holds tsNs.
export function openTimeNs(timeframe: Timeframe, tsNs: bigint): bigint {
  const length = BigInt(timeframe) * 1_000_000_000n;
  const offset = timeframe === 604800 ? WEEK_OFFSET_NS : 0n;
  const past = (tsNs - offset) % length;
  return tsNs - (past < 0n ? past + length : past);
}

export interface OrderRequest {
  symbol: string;
  side: Side;
  type: OrderType;
  size: Dec;
  price: Dec | null;
  timeInForce: TimeInForce;
  postOnly: boolean;
  reduceOnly: boolean;
  clientOrderId: string;
}

export interface Order {
  orderId: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  timeInForce: TimeInForce;
  postOnly: boolean;
  reduceOnly: boolean;
  price: Dec | null;
  size: Dec;
  filledSize: Dec;
  averageFillPrice: Dec | null;
  status: OrderStatus;
  statusReason: string;
  createdNs: bigint;
  updatedNs: bigint;
}

export interface Fill {
  fillId: string;
  orderId: string;
  clientOrderId: string;
  symbol: string;
  side: Side;
  price: Dec;
  size: Dec;
  fee: Dec;
  feeAsset: string;
  liquidity: Liquidity;
  tradeId: string;
  tsEventNs: bigint;
}

export interface Execution {
  tsEventNs: bigint;
  order: Order;
  fill: Fill | null;
}

export interface Balance {
  asset: string;
  free: Dec;
  locked: Dec;
}

export interface Position {
  symbol: string;
  size: Dec;
  entryPrice: Dec | null;
  realizedPnl: Dec;
}

export interface Candle {
  timeframe: Timeframe;
  openTimeNs: bigint;
  open: Dec;
  high: Dec;
  low: Dec;
  close: Dec;
  volume: Dec;
  quoteVolume: Dec;
  tradeCount: number;
  closed: boolean;
}

export type Instrument = SymbolSpec;

export function snapshot(order: Order): Order {
  return { ...order };
}
