// Wire requests to checked domain values, or InvalidArgument naming every bad field at once.
// The rules and their words are the Python venues' (trademesh/core/domain/order_rules.py and
// trademesh/venues/runtime/validate.py), so a request is refused alike whichever venue it reaches.

import { OrderType as PbOrderType } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type { PlaceOrderRequest } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type { AmendOrderRequest, ListFundingPaymentsRequest } from "./gen/trademesh/tradeflow/v1/tradeflow_pb.js";
import type {
  GetCandlesRequest,
  GetTickersRequest,
  GetTradesRequest,
  SubscribeRequest,
} from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import { Channel as PbChannel, OverflowPolicy } from "./gen/trademesh/marketdata/v1/marketdata_pb.js";
import type { Subscription } from "./gen/trademesh/admin/v1/admin_pb.js";
import {
  DEFAULT_CANDLES,
  MAX_CANDLES,
  MAX_FUNDING_PAYMENTS,
  MAX_TTL_MS,
  MIN_TTL_MS,
  type SymbolSpec,
} from "./config.js";
import { CHANNEL_FROM_PB, SIDE_FROM_PB, TIF_FROM_PB, TIMEFRAME_FROM_PB } from "./convert.js";
import { Dec, MAX_DIGITS } from "./decimal.js";
import { InvalidArgument, Violations, shown } from "./errors.js";
import type { Channel, OrderRequest, TimeInForce, Timeframe } from "./model.js";
import { DEFAULT_TRADES, MAX_TRADES, decodeToken, type TradesCursor } from "./trades.js";

type Instruments = ReadonlyMap<string, SymbolSpec>;

const CLIENT_ORDER_ID = /^[A-Za-z0-9._:-]{1,64}$/;
export const MAX_REASON_CHARS = 256;
const CONTROL = /[\x00-\x1f\x7f]/;

// A wire decimal, or null (with the violation added) when it is not one; "" is null, and a
// violation when required.
export function decimal(found: Violations, field: string, text: string, required = true): Dec | null {
  if (text === "") {
    if (required) {
      found.add(field, "is required");
    }
    return null;
  }
  const value = Dec.parse(text);
  if (value === null) {
    found.add(field, `${shown(text)} is not a plain decimal number such as 65000.5`);
    return null;
  }
  if (Dec.significantDigits(text) > MAX_DIGITS) {
    found.add(field, `${shown(text)} has more than ${MAX_DIGITS} significant digits`);
    return null;
  }
  return value;
}

function instrumentOf(found: Violations, field: string, symbol: string, instruments: Instruments): SymbolSpec | null {
  if (symbol === "") {
    found.add(field, "is required");
    return null;
  }
  const spec = instruments.get(symbol);
  if (spec === undefined) {
    found.add(field, `unknown symbol ${shown(symbol)}; ListInstruments names the venue's symbols`);
    return null;
  }
  return spec;
}

function checkEnum(
  found: Violations,
  field: string,
  value: number,
  table: ReadonlyMap<number, unknown>,
  what: string,
): void {
  if (value === 0) {
    found.add(field, "is required");
  } else if (!table.has(value)) {
    found.add(field, `${value} is not a valid ${what}`);
  }
}

export function symbolFilter(symbol: string, instruments: Instruments, field = "symbol"): string | null {
  if (symbol === "") {
    return null;
  }
  if (!instruments.has(symbol)) {
    throw InvalidArgument.field(field, `unknown symbol ${shown(symbol)}`);
  }
  return symbol;
}

// How a PlaceOrder's type reads: a limit or market order, or a stop that works as one.
type Kind = "limit" | "market" | "stop-market" | "stop-limit";
const KINDS = new Map<number, Kind>([
  [PbOrderType.LIMIT, "limit"],
  [PbOrderType.MARKET, "market"],
  [PbOrderType.STOP_MARKET, "stop-market"],
  [PbOrderType.STOP_LIMIT, "stop-limit"],
]);

// A checked PlaceOrder; "stop" for a well-formed stop order, which this venue does not hold
// (the caller refuses it with FAILED_PRECONDITION, as the Python venues without stops do).
export function placeOrder(request: PlaceOrderRequest, instruments: Instruments): OrderRequest | "stop" {
  const found = new Violations();
  const spec = instrumentOf(found, "symbol", request.symbol, instruments);
  checkEnum(found, "side", request.side, SIDE_FROM_PB, "side");
  checkEnum(found, "type", request.type, KINDS, "order type");
  const kind = KINDS.get(request.type) ?? null;
  const size = sizeOf(found, request.size, spec);
  const price = priceOf(found, request.price, kind, spec);
  const trigger = triggerOf(found, request.triggerPrice, kind, spec);
  const tif = timeInForce(found, request, kind);
  if (request.clientOrderId !== "" && !CLIENT_ORDER_ID.test(request.clientOrderId)) {
    found.add("client_order_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -");
  }
  const reference = price ?? trigger; // a stop-market's notional at its trigger
  if (spec !== null && size !== null && reference !== null) {
    const notional = size.mul(reference);
    if (notional.lt(spec.minNotional)) {
      found.add("size", `notional ${notional} is below the minimum ${spec.minNotional}`);
    }
  }
  found.raiseAny();
  if (kind === "stop-market" || kind === "stop-limit") {
    return "stop";
  }
  return {
    symbol: request.symbol,
    side: SIDE_FROM_PB.get(request.side)!,
    type: kind!,
    size: size!,
    price,
    timeInForce: tif!,
    postOnly: request.postOnly,
    reduceOnly: request.reduceOnly,
    clientOrderId: request.clientOrderId,
  };
}

function sizeOf(found: Violations, text: string, spec: SymbolSpec | null): Dec | null {
  const size = decimal(found, "size", text);
  if (size === null) {
    return null;
  }
  if (size.sign <= 0) {
    found.add("size", `must be positive, got ${text}`);
  } else if (spec !== null && !size.isMultipleOf(spec.lotSize)) {
    found.add("size", `${text} is not a multiple of the lot size ${spec.lotSize}`);
  } else if (spec !== null && size.lt(spec.minSize)) {
    found.add("size", `${text} is below the minimum size ${spec.minSize}`);
  } else {
    return size;
  }
  return null;
}

function priceOf(found: Violations, text: string, kind: Kind | null, spec: SymbolSpec | null): Dec | null {
  if (kind === "market" || kind === "stop-market") {
    if (text !== "") {
      found.add("price", `must be empty for a ${kind} order`);
    }
    return null;
  }
  return tickPrice(found, "price", text, spec, kind !== null);
}

// Required for a stop order (the last trade price that triggers it), empty otherwise.
function triggerOf(found: Violations, text: string, kind: Kind | null, spec: SymbolSpec | null): Dec | null {
  if (kind === null) {
    return null;
  }
  if (kind === "limit" || kind === "market") {
    if (text !== "") {
      found.add("trigger_price", `must be empty for a ${kind} order (stops only)`);
    }
    return null;
  }
  return tickPrice(found, "trigger_price", text, spec, true);
}

function tickPrice(
  found: Violations,
  field: string,
  text: string,
  spec: SymbolSpec | null,
  required: boolean,
): Dec | null {
  const price = decimal(found, field, text, required);
  if (price === null) {
    return null;
  }
  if (price.sign <= 0) {
    found.add(field, `must be positive, got ${text}`);
  } else if (spec !== null && !price.isMultipleOf(spec.tickSize)) {
    found.add(field, `${text} is not a multiple of the tick size ${spec.tickSize}`);
  } else {
    return price;
  }
  return null;
}

function timeInForce(found: Violations, request: PlaceOrderRequest, kind: Kind | null): TimeInForce | null {
  if (request.timeInForce !== 0 && !TIF_FROM_PB.has(request.timeInForce)) {
    found.add("time_in_force", `${request.timeInForce} is not a valid time in force`);
    return null;
  }
  const worksAsMarket = kind === "market" || kind === "stop-market"; // a stop's TIF applies once triggered
  const tif = TIF_FROM_PB.get(request.timeInForce) ?? (worksAsMarket ? "ioc" : "gtc");
  if (worksAsMarket && tif === "gtc") {
    const what = kind === "market" ? "a market order" : "a stop-market order, once triggered,";
    found.add("time_in_force", `${what} cannot rest: use IOC or FOK`);
  }
  if (request.postOnly && (kind !== "limit" || tif !== "gtc")) {
    found.add("post_only", "only a GTC limit order can be post-only");
  }
  return tif;
}

export interface OrderRef {
  orderId: string;
  clientOrderId: string;
}

export function orderRef(orderId: string, clientOrderId: string): OrderRef {
  if ((orderId === "") === (clientOrderId === "")) {
    throw InvalidArgument.field("order_id", "set exactly one of order_id and client_order_id");
  }
  return { orderId, clientOrderId };
}

// A cancel's reason: one line of printable text (empty: none given).
export function cancelReason(reason: string): string {
  if (reason.length > MAX_REASON_CHARS) {
    throw InvalidArgument.field("reason", `is ${reason.length} characters; at most ${MAX_REASON_CHARS}`);
  }
  if (CONTROL.test(reason)) {
    throw InvalidArgument.field("reason", "must be one line of printable text (no control characters)");
  }
  return reason.trim();
}

export interface Amendment {
  price: Dec | null;
  size: Dec | null;
  triggerPrice: Dec | null;
  clientOrderId: string;
  unfilledOnly: boolean;
}

export function amendOrder(request: AmendOrderRequest): Amendment {
  const found = new Violations();
  if ((request.orderId === "") === (request.clientOrderId === "")) {
    found.add("order_id", "set exactly one of order_id and client_order_id");
  }
  const positive = (field: string, text: string): Dec | null => {
    const value = decimal(found, field, text, false);
    if (value !== null && value.sign <= 0) {
      found.add(field, `must be positive, got ${text}`);
      return null;
    }
    return value;
  };
  const price = positive("price", request.price);
  const size = positive("size", request.size);
  const triggerPrice = positive("trigger_price", request.triggerPrice);
  const renamed = request.newClientOrderId;
  if (renamed !== "" && !CLIENT_ORDER_ID.test(renamed)) {
    found.add("new_client_order_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -");
  }
  if (found.items.length === 0 && renamed === "" && price === null && size === null && triggerPrice === null) {
    found.add("size", "name at least one of price, size, trigger_price and new_client_order_id");
  }
  found.raiseAny();
  return { price, size, triggerPrice, clientOrderId: renamed, unfilledOnly: request.unfilledOnly };
}

export interface Subscribed {
  keys: Array<readonly [string, Channel]>;
  timeframe: Timeframe;
  // Symbols the venue does not list, each refused alone with its reason.
  unknown: Array<[string, string]>;
}

export function subscribeRequest(request: SubscribeRequest, instruments: Instruments): Subscribed {
  const found = new Violations();
  if (request.symbols.length === 0) {
    found.add("symbols", "name at least one symbol");
  }
  const unknown = new Map<string, [string, string]>();
  let known = false;
  request.symbols.forEach((symbol, index) => {
    if (symbol === "") {
      found.add(`symbols[${index}]`, "is required");
    } else if (instruments.has(symbol)) {
      known = true;
    } else if (!unknown.has(symbol)) {
      unknown.set(symbol, [
        `symbols[${index}]`,
        `unknown symbol ${shown(symbol)}; ListInstruments names the venue's symbols`,
      ]);
    }
  });
  if (!known) {
    unknown.forEach(([field, why]) => found.add(field, why));
  }
  if (request.channels.length === 0) {
    found.add("channels", "name at least one channel");
  }
  request.channels.forEach((channel, index) =>
    checkEnum(found, `channels[${index}]`, channel, CHANNEL_FROM_PB, "channel"),
  );
  let timeframe: Timeframe = 60;
  if (request.candleTimeframe !== 0) {
    const asked = TIMEFRAME_FROM_PB.get(request.candleTimeframe);
    if (asked === undefined) {
      found.add("candle_timeframe", `${request.candleTimeframe} is not a valid timeframe`);
    } else {
      timeframe = asked;
    }
  }
  if (!Object.values(OverflowPolicy).includes(request.overflowPolicy)) {
    found.add("overflow_policy", `${request.overflowPolicy} is not a valid overflow policy`);
  }
  found.raiseAny();
  const served = [...new Set(request.symbols)].filter((symbol) => instruments.has(symbol));
  const channels = [...new Set(request.channels)].map((c) => CHANNEL_FROM_PB.get(c)!);
  const keys = served.flatMap((symbol) => channels.map((channel) => [symbol, channel] as const));
  return { keys, timeframe, unknown: [...unknown.entries()].map(([symbol, [, why]]) => [symbol, why]) };
}

export function candlesRequest(
  request: GetCandlesRequest,
  instruments: Instruments,
  nowNs: bigint,
): { symbol: string; timeframe: Timeframe; startNs: bigint; endNs: bigint; limit: number } {
  const found = new Violations();
  instrumentOf(found, "symbol", request.symbol, instruments);
  checkEnum(found, "timeframe", request.timeframe, TIMEFRAME_FROM_PB, "timeframe");
  const endNs = request.endNs === 0n ? nowNs : request.endNs;
  if (request.startNs < 0n) {
    found.add("start_ns", "must not be negative");
  }
  if (endNs <= request.startNs) {
    found.add("end_ns", "must be after start_ns (or 0 for now)");
  }
  if (request.limit > MAX_CANDLES) {
    found.add("limit", `at most ${MAX_CANDLES}`);
  }
  found.raiseAny();
  return {
    symbol: request.symbol,
    timeframe: TIMEFRAME_FROM_PB.get(request.timeframe)!,
    startNs: request.startNs,
    endNs,
    limit: request.limit === 0 ? DEFAULT_CANDLES : request.limit,
  };
}

// The cursor of a GetTrades page (its first page's, or its page_token's) and its limit.
export function tradesRequest(
  request: GetTradesRequest,
  instruments: Instruments,
  nowNs: bigint,
): { cursor: TradesCursor; limit: number } {
  const found = new Violations();
  instrumentOf(found, "symbol", request.symbol, instruments);
  if (request.limit > MAX_TRADES) {
    found.add("limit", `at most ${MAX_TRADES} (0: ${DEFAULT_TRADES})`);
  }
  let cursor: TradesCursor | null = null;
  if (request.pageToken !== "") {
    cursor = decodeToken(request.pageToken);
    if (cursor === null) {
      found.add(
        "page_token",
        "is not a page token of this venue: pass the next_page_token of the previous answer, or none",
      );
    } else if (request.symbol !== "" && cursor.symbol !== request.symbol) {
      found.add("page_token", `is a page of ${shown(cursor.symbol)}, not of ${shown(request.symbol)}`);
    }
  } else {
    const endNs = request.endNs === 0n ? nowNs : request.endNs;
    if (request.startNs < 0n) {
      found.add("start_ns", "must not be negative");
    } else if (request.endNs < 0n || endNs <= request.startNs) {
      found.add("end_ns", "must be after start_ns (or 0 for now)");
    }
    cursor = { symbol: request.symbol, endNs, sinceNs: request.startNs, skip: 0 };
  }
  found.raiseAny();
  return { cursor: cursor!, limit: request.limit === 0 ? DEFAULT_TRADES : request.limit };
}

// The symbols of a GetTickers request, in the venue's order (every listed one when none).
export function tickersRequest(request: GetTickersRequest, instruments: Instruments): string[] {
  const found = new Violations();
  request.symbols.forEach((symbol, index) => instrumentOf(found, `symbols[${index}]`, symbol, instruments));
  found.raiseAny();
  const wanted = new Set(request.symbols);
  return [...instruments.keys()].filter((symbol) => wanted.size === 0 || wanted.has(symbol)).sort();
}

export function fundingRequest(request: ListFundingPaymentsRequest, instruments: Instruments, nowNs: bigint): void {
  const found = new Violations();
  if (request.symbol !== "" && !instruments.has(request.symbol)) {
    found.add("symbol", `unknown symbol ${shown(request.symbol)}; ListInstruments names the symbols`);
  }
  if (request.sinceNs < 0n) {
    found.add("since_ns", "must not be negative (0: from the oldest payment)");
  } else if (request.sinceNs > nowNs) {
    found.add("since_ns", "must not be in the future");
  }
  if (request.limit < 0 || request.limit > MAX_FUNDING_PAYMENTS) {
    found.add("limit", `must be between 0 and ${MAX_FUNDING_PAYMENTS} (0: 100)`);
  }
  found.raiseAny();
}

export function streamKeys(
  subscriptions: readonly Subscription[],
  instruments: Instruments,
): Array<readonly [string, Channel]> {
  const found = new Violations();
  if (subscriptions.length === 0) {
    found.add("subscriptions", "name at least one subscription");
  }
  subscriptions.forEach((item, index) => {
    const spec = instrumentOf(found, `subscriptions[${index}].symbol`, item.symbol, instruments);
    checkEnum(found, `subscriptions[${index}].channel`, item.channel, CHANNEL_FROM_PB, "channel");
    if (item.channel === PbChannel.FUNDING && spec !== null) {
      found.add(`subscriptions[${index}].channel`, `${spec.symbol} is spot: only a perpetual has a funding rate`);
    }
  });
  found.raiseAny();
  return subscriptions.map((item) => [item.symbol, CHANNEL_FROM_PB.get(item.channel)!] as const);
}

// 0 (disarm), or MIN_TTL_MS to MAX_TTL_MS.
export function heartbeatTtl(ttlMs: number): number {
  if (ttlMs > MAX_TTL_MS) {
    throw InvalidArgument.field("ttl_ms", `${ttlMs} is above the maximum ${MAX_TTL_MS}`);
  }
  if (ttlMs > 0 && ttlMs < MIN_TTL_MS) {
    throw InvalidArgument.field("ttl_ms", `${ttlMs} is below the minimum ${MIN_TTL_MS} (0 disarms the switch)`);
  }
  return ttlMs;
}
