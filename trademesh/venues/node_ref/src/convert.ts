// Domain values to their wire messages and back (decimals as plain strings, times as int64 ns).

import { create } from "@bufbuild/protobuf";
import {
  InstrumentKind,
  InstrumentSchema,
  Side as PbSide,
  Timeframe as PbTimeframe,
} from "./gen/trademesh/common/v1/common_pb.js";
import type { Instrument as PbInstrument } from "./gen/trademesh/common/v1/common_pb.js";
import { Channel as PbChannel, CandleSchema } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import type { Candle as PbCandle } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import {
  BalanceSchema,
  ExecutionSchema,
  FillSchema,
  Liquidity as PbLiquidity,
  OrderSchema,
  OrderStatus as PbOrderStatus,
  OrderType as PbOrderType,
  PositionSchema,
  TimeInForce as PbTimeInForce,
} from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type {
  Balance as PbBalance,
  Execution as PbExecution,
  Order as PbOrder,
  Position as PbPosition,
} from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import { MAKER_FEE_RATE, TAKER_FEE_RATE, VENUE, type SymbolSpec } from "./config.js";
import { optional } from "./decimal.js";
import type {
  Balance,
  Candle,
  Channel,
  Execution,
  Order,
  OrderStatus,
  OrderType,
  Position,
  Side,
  TimeInForce,
  Timeframe,
} from "./model.js";

export const SIDE_TO_PB: Record<Side, PbSide> = { buy: PbSide.BUY, sell: PbSide.SELL };
export const SIDE_FROM_PB = new Map<number, Side>([
  [PbSide.BUY, "buy"],
  [PbSide.SELL, "sell"],
]);

const TYPE_TO_PB: Record<OrderType, PbOrderType> = { limit: PbOrderType.LIMIT, market: PbOrderType.MARKET };

export const TIF_FROM_PB = new Map<number, TimeInForce>([
  [PbTimeInForce.GTC, "gtc"],
  [PbTimeInForce.IOC, "ioc"],
  [PbTimeInForce.FOK, "fok"],
]);
const TIF_TO_PB: Record<TimeInForce, PbTimeInForce> = {
  gtc: PbTimeInForce.GTC,
  ioc: PbTimeInForce.IOC,
  fok: PbTimeInForce.FOK,
};

const STATUS_TO_PB: Record<OrderStatus, PbOrderStatus> = {
  open: PbOrderStatus.OPEN,
  partially_filled: PbOrderStatus.PARTIALLY_FILLED,
  filled: PbOrderStatus.FILLED,
  canceled: PbOrderStatus.CANCELED,
  rejected: PbOrderStatus.REJECTED,
  expired: PbOrderStatus.EXPIRED,
};

export const CHANNEL_FROM_PB = new Map<number, Channel>([
  [PbChannel.TRADES, "trades"],
  [PbChannel.BOOK, "book"],
  [PbChannel.CANDLES, "candles"],
  [PbChannel.TICKERS, "tickers"],
  [PbChannel.FUNDING, "funding"],
]);
export const CHANNEL_TO_PB: Record<Channel, PbChannel> = {
  trades: PbChannel.TRADES,
  book: PbChannel.BOOK,
  candles: PbChannel.CANDLES,
  tickers: PbChannel.TICKERS,
  funding: PbChannel.FUNDING,
};

export const TIMEFRAME_FROM_PB = new Map<number, Timeframe>([
  [PbTimeframe.TIMEFRAME_1_SECOND, 1],
  [PbTimeframe.TIMEFRAME_1_MINUTE, 60],
  [PbTimeframe.TIMEFRAME_5_MINUTES, 300],
  [PbTimeframe.TIMEFRAME_15_MINUTES, 900],
  [PbTimeframe.TIMEFRAME_1_HOUR, 3600],
  [PbTimeframe.TIMEFRAME_4_HOURS, 14400],
  [PbTimeframe.TIMEFRAME_1_DAY, 86400],
  [PbTimeframe.TIMEFRAME_1_WEEK, 604800],
]);
const TIMEFRAME_TO_PB = new Map<Timeframe, PbTimeframe>([...TIMEFRAME_FROM_PB].map(([pb, tf]) => [tf, pb]));

export function timeframeToPb(timeframe: Timeframe): PbTimeframe {
  return TIMEFRAME_TO_PB.get(timeframe)!;
}

export function instrumentToPb(spec: SymbolSpec): PbInstrument {
  return create(InstrumentSchema, {
    venue: VENUE,
    symbol: spec.symbol,
    nativeSymbol: spec.native,
    kind: InstrumentKind.SPOT,
    baseAsset: spec.base,
    quoteAsset: spec.quote,
    settleAsset: spec.quote,
    tickSize: spec.tickSize.toString(),
    lotSize: spec.lotSize.toString(),
    minSize: spec.minSize.toString(),
    minNotional: spec.minNotional.toString(),
    contractSize: "1",
    active: true,
    contractValue: "1",
    contractValueAsset: spec.base,
    makerFeeRate: MAKER_FEE_RATE.toString(),
    takerFeeRate: TAKER_FEE_RATE.toString(),
  });
}

export function orderToPb(order: Order): PbOrder {
  return create(OrderSchema, {
    venue: VENUE,
    orderId: order.orderId,
    clientOrderId: order.clientOrderId,
    symbol: order.symbol,
    side: SIDE_TO_PB[order.side],
    type: TYPE_TO_PB[order.type],
    timeInForce: TIF_TO_PB[order.timeInForce],
    postOnly: order.postOnly,
    reduceOnly: order.reduceOnly,
    price: optional(order.price),
    size: order.size.toString(),
    filledSize: order.filledSize.toString(),
    averageFillPrice: optional(order.averageFillPrice),
    status: STATUS_TO_PB[order.status],
    statusReason: order.statusReason,
    createdNs: order.createdNs,
    updatedNs: order.updatedNs,
  });
}

export function executionToPb(execution: Execution, sequence: bigint): PbExecution {
  const message = create(ExecutionSchema, {
    venue: VENUE,
    tsEventNs: execution.tsEventNs,
    order: orderToPb(execution.order),
    sequence,
  });
  const fill = execution.fill;
  if (fill !== null) {
    message.fill = create(FillSchema, {
      fillId: fill.fillId,
      orderId: fill.orderId,
      clientOrderId: fill.clientOrderId,
      symbol: fill.symbol,
      side: SIDE_TO_PB[fill.side],
      price: fill.price.toString(),
      size: fill.size.toString(),
      fee: fill.fee.toString(),
      feeAsset: fill.feeAsset,
      liquidity: fill.liquidity === "maker" ? PbLiquidity.MAKER : PbLiquidity.TAKER,
      tradeId: fill.tradeId,
      tsEventNs: fill.tsEventNs,
    });
  }
  return message;
}

export function balanceToPb(balance: Balance): PbBalance {
  return create(BalanceSchema, {
    asset: balance.asset,
    free: balance.free.toString(),
    locked: balance.locked.toString(),
    total: balance.free.add(balance.locked).toString(),
  });
}

export function positionToPb(position: Position): PbPosition {
  return create(PositionSchema, {
    symbol: position.symbol,
    size: position.size.toString(),
    entryPrice: optional(position.entryPrice),
    realizedPnl: position.realizedPnl.toString(),
  });
}

export function candleToPb(candle: Candle): PbCandle {
  return create(CandleSchema, {
    timeframe: timeframeToPb(candle.timeframe),
    openTimeNs: candle.openTimeNs,
    open: candle.open.toString(),
    high: candle.high.toString(),
    low: candle.low.toString(),
    close: candle.close.toString(),
    volume: candle.volume.toString(),
    quoteVolume: candle.quoteVolume.toString(),
    tradeCount: BigInt(candle.tradeCount),
    closed: candle.closed,
  });
}
