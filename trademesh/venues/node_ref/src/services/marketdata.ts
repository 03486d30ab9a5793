// trademesh.marketdata.v1.MarketData: instruments, live streams (resumable), candle and trade
// history (its latest trades: src/trades.ts) and every symbol's ticker at once.

import { create } from "@bufbuild/protobuf";
import {
  GetCandlesResponseSchema,
  GetTickersResponseSchema,
  GetTradesResponseSchema,
  ListInstrumentsResponseSchema,
  MarketData,
  OverflowPolicy,
} from "../gen/trademesh/marketdata/v1/marketdata_pb.js";
import type {
  GetCandlesRequest,
  GetCandlesResponse,
  GetTickersRequest,
  GetTickersResponse,
  GetTradesRequest,
  GetTradesResponse,
  ListInstrumentsRequest,
  ListInstrumentsResponse,
  SubscribeRequest,
} from "../gen/trademesh/marketdata/v1/marketdata_pb.js";
import { SIDE_TO_PB, candleToPb, instrumentToPb } from "../convert.js";
import { route, type ResumePoint, type Route } from "../fanout.js";
import type { Channel } from "../model.js";
import type { Handlers, Sink } from "../rpc.js";
import { encodeToken, tradesPage } from "../trades.js";
import { candlesRequest, subscribeRequest, symbolFilter, tickersRequest, tradesRequest } from "../validate.js";
import type { Venue } from "../venue.js";

export const SERVICE = MarketData;

export function marketDataHandlers(venue: Venue): Handlers {
  return {
    unary: {
      ListInstruments: (request: ListInstrumentsRequest): ListInstrumentsResponse => {
        request.symbols.forEach((symbol, index) => symbolFilter(symbol, venue.instruments, `symbols[${index}]`));
        const wanted = new Set(request.symbols);
        const specs = [...venue.instruments.values()]
          .filter((spec) => wanted.size === 0 || wanted.has(spec.symbol))
          .sort((a, b) => (a.symbol < b.symbol ? -1 : 1));
        return create(ListInstrumentsResponseSchema, { instruments: specs.map(instrumentToPb) });
      },
      GetCandles: (request: GetCandlesRequest): GetCandlesResponse => {
        const asked = candlesRequest(request, venue.instruments, venue.clock.now());
        const candles = venue.candles(asked.symbol).history(asked.timeframe, asked.startNs, asked.endNs, asked.limit);
        return create(GetCandlesResponseSchema, { candles: candles.map(candleToPb) });
      },
      GetTrades: (request: GetTradesRequest): GetTradesResponse => {
        const { cursor, limit } = tradesRequest(request, venue.instruments, venue.clock.now());
        const read = venue.trades(cursor.symbol, cursor.sinceNs, cursor.endNs, limit + cursor.skip);
        const [page, next] = tradesPage(cursor, read, limit);
        return create(GetTradesResponseSchema, {
          trades: page.map((trade) => ({
            tsEventNs: trade.tsNs,
            trade: { tradeId: trade.tradeId, price: trade.price, size: trade.size, takerSide: SIDE_TO_PB[trade.side] },
          })),
          nextPageToken: next === null ? "" : encodeToken(next),
        });
      },
      GetTickers: (request: GetTickersRequest): GetTickersResponse =>
        create(GetTickersResponseSchema, { tickers: venue.tickers(tickersRequest(request, venue.instruments)) }),
    },
    stream: {
      Subscribe: (request: SubscribeRequest, sink: Sink) => subscribe(venue, request, sink),
    },
    raw: new Set(["Subscribe"]),
  };
}

async function subscribe(venue: Venue, request: SubscribeRequest, sink: Sink): Promise<void> {
  venue.requireServing();
  const asked = subscribeRequest(request, venue.instruments);
  const [served, missing] = venue.splitActive(asked.keys);
  const routes = new Set<Route>(
    served.map(([symbol, channel]) => route(symbol, channel, channel === "candles" ? asked.timeframe : null)),
  );
  const feed = venue.feed;
  const refused = [
    ...asked.unknown.map(([symbol, why]) => feed.refusedChunk(symbol, null, why)),
    ...missing.map(([symbol, channel, why]) => feed.refusedChunk(symbol, channel, why)),
  ];
  const point: ResumePoint | null = request.resume === undefined ? null : { ...request.resume };
  const resume = point !== null && venue.fanout.history.canResume(point) ? point : null;
  let initial = refused;
  if (resume === null) {
    const books = [...new Set(served.filter(([, c]) => c === "book").map(([s]) => s))].sort();
    const lost = point === null ? [] : lostNotices(venue, point, served);
    initial = [...lost, ...books.map((symbol) => feed.snapshotChunk(symbol)), ...refused];
  }
  const conflate = request.overflowPolicy === OverflowPolicy.CONFLATE;
  const subscriber = venue.fanout.subscribe(routes, conflate, Buffer.concat(initial), resume);
  void sink.gone.then(() => subscriber.outbox.end());
  try {
    for (;;) {
      const messages = await subscriber.next();
      if (messages === null || sink.cancelled) {
        return;
      }
      for (const message of messages) {
        await sink.write(message);
      }
    }
  } finally {
    venue.fanout.unsubscribe(subscriber);
  }
}

// A GAP notice per asked stream that cannot be resumed (another process, or too long ago).
function lostNotices(
  venue: Venue,
  point: ResumePoint,
  served: ReadonlyArray<readonly [string, Channel]>,
): Uint8Array[] {
  const reason =
    `cannot resume from position ${point.position} of epoch ${point.epoch}: this venue process ` +
    `(epoch ${venue.fanout.history.epoch}) no longer holds it; events may be missing`;
  const streams = [...new Set(served.map(([symbol, channel]) => `${symbol}\u0000${channel}`))].sort();
  return streams.map((key) => {
    const [symbol, channel] = key.split("\u0000") as [string, Channel];
    return venue.feed.gapChunk(symbol, channel, reason);
  });
}
