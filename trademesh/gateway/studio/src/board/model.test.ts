// board/model: the newest ticker per symbol, its change since the board opened, its 24h change
// (against the ticker's 24h open, else a candle's) and its 24h volume.
import { create } from "@bufbuild/protobuf";
import { describe, expect, test } from "vitest";
import { SymbolTickerSchema, TickerSchema } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import {
  Board,
  type BoardRow,
  DAY_NS,
  REFERENCE_MS,
  STREAM_FRESH_MS,
  change24h,
  symbolAssets,
  volume24h,
} from "./model";

function ticker(last: string, baseVolume24h = "", quoteVolume24h = "") {
  return create(TickerSchema, { bestBid: last, bestAsk: last, lastPrice: last, baseVolume24h, quoteVolume24h });
}

function row(symbol: string, baseVolume: string, quoteVolume: string): BoardRow {
  const board = new Board();
  board.ticker("v", symbol, 1n, ticker("1", baseVolume, quoteVolume));
  const [taken] = board.takeChanged();
  if (taken === undefined) throw new Error("no row");
  return taken;
}

describe("Board", () => {
  test("keeps the newest ticker of a symbol, its volumes, and its change since the first", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 1n, ticker("65000.5", "10", "650005"));
    board.ticker("sim", "BTC/USDT", 3n, ticker("65010.75", "12.5", "812634.375"));
    board.ticker("sim", "BTC/USDT", 2n, ticker("1", "1", "1")); // older than the one kept
    const [shown, ...more] = board.takeChanged();
    expect(more).toEqual([]);
    expect(shown).toMatchObject({ last: "65010.75", opening: "65000.5", change: "10.25" });
    expect(shown).toMatchObject({ baseVolume: "12.5", quoteVolume: "812634.375" });
    expect(board.takeChanged()).toEqual([]);
  });

  test("touchAll draws every row again at the next frame", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 1n, ticker("1"));
    board.ticker("okx", "ETH/USDT", 1n, ticker("2"));
    board.takeChanged();
    board.touchAll();
    expect(board.takeChanged().map((r) => r.symbol).sort()).toEqual(["BTC/USDT", "ETH/USDT"]);
  });
});

function quoted(symbol: string, last: string, tsEventNs = 0n) {
  return create(SymbolTickerSchema, {
    symbol,
    tsEventNs,
    ticker: { bestBid: `${last}1`, bestAsk: `${last}9`, lastPrice: last, quoteVolume24h: "100" },
  });
}

describe("Board.snapshot (every instrument's ticker at once)", () => {
  test("fills every row at once, as of the answer where the venue did not time a ticker", () => {
    const board = new Board();
    const taken = board.snapshot("sim", [quoted("BTC/USDT", "65000.5", 5n), quoted("ETH/USDT", "3000.25")], 9n, 0);
    expect(taken).toBe(2);
    expect(board.venues()).toEqual(["sim"]);
    const rows = board.takeChanged().sort((a, b) => a.symbol.localeCompare(b.symbol));
    expect(rows.map((r) => [r.symbol, r.bid, r.ask, r.last, r.tsEventNs, r.source])).toEqual([
      ["BTC/USDT", "65000.51", "65000.59", "65000.5", 5n, "snapshot"],
      ["ETH/USDT", "3000.251", "3000.259", "3000.25", 9n, "snapshot"],
    ]);
    expect(rows[0]?.quoteVolume).toBe("100");
  });

  test("a row the stream fed lately keeps the stream's ticker; after STREAM_FRESH_MS the newest wins", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 10n, ticker("65000"), 1_000);
    board.takeChanged();
    expect(board.snapshot("sim", [quoted("BTC/USDT", "65100", 20n)], 20n, 1_000 + STREAM_FRESH_MS - 1)).toBe(0);
    expect(board.takeChanged()).toEqual([]);
    expect(board.snapshot("sim", [quoted("BTC/USDT", "65100", 20n)], 20n, 1_000 + STREAM_FRESH_MS)).toBe(1);
    const [row] = board.takeChanged();
    expect(row).toMatchObject({ last: "65100", source: "snapshot", opening: "65000", change: "100" });
    expect(board.snapshot("sim", [quoted("BTC/USDT", "1", 15n)], 15n, 1_000_000)).toBe(0); // older
  });
});

describe("Board.reference (the 24h change)", () => {
  test("the change against the price 24 h ago, exact, with its percentage; kept for later tickers", () => {
    const board = new Board();
    board.ticker("sim", "BTC/USDT", 1n, ticker("65010.75"), 0);
    board.reference("sim", "BTC/USDT", "65000.5", 7n, 0);
    const [row] = board.takeChanged();
    expect(row).toMatchObject({ reference: "65000.5", referenceNs: 7n, change24h: "10.25" });
    expect(row?.change24hPercent).toBeCloseTo((10.25 / 65000.5) * 100, 12);
    expect(Board.trend24h(row as BoardRow)).toBe(1);
    board.snapshot("sim", [quoted("BTC/USDT", "64990.5", 2n)], 2n, STREAM_FRESH_MS);
    const [next] = board.takeChanged();
    expect(next).toMatchObject({ last: "64990.5", change24h: "-10" });
    expect(Board.trend24h(next as BoardRow)).toBe(-1);
  });

  test("references are due for rows never asked, and again after REFERENCE_MS", () => {
    const board = new Board();
    board.snapshot("sim", [quoted("BTC/USDT", "1"), quoted("ETH/USDT", "2")], 1n, 0);
    board.snapshot("okx", [quoted("SOL/USDT", "3")], 1n, 0);
    expect(board.referencesDue("sim", 0)).toEqual(["BTC/USDT", "ETH/USDT"]);
    board.reference("sim", "BTC/USDT", "0.5", 1n, 100);
    board.referenceMissing("sim", "ETH/USDT", 100);
    expect(board.referencesDue("sim", 100 + REFERENCE_MS - 1)).toEqual([]);
    expect(board.referencesDue("sim", 100 + REFERENCE_MS)).toEqual(["BTC/USDT", "ETH/USDT"]);
    expect(board.referencesDue("okx", 0)).toEqual(["SOL/USDT"]);
  });

  test("no change without both prices", () => {
    expect(change24h("10", "", 0n)).toMatchObject({ change24h: "", change24hPercent: null });
    expect(change24h("", "9", 1n)).toMatchObject({ change24h: "", change24hPercent: null });
    expect(change24h("10", "0", 1n)).toMatchObject({ change24h: "10", change24hPercent: null });
  });
});

function opened(symbol: string, last: string, open24h: string, tsEventNs: bigint) {
  return create(SymbolTickerSchema, {
    symbol,
    tsEventNs,
    ticker: { bestBid: last, bestAsk: last, lastPrice: last, open24h },
  });
}

describe("the ticker's 24h open (the venue states its price 24 h ago)", () => {
  test("is the reference of the 24h change, exact, 24 h before the ticker; no candle is asked", () => {
    const board = new Board();
    board.snapshot("binance", [opened("BTC/USDT", "65010.75", "65000.5", DAY_NS + 7n)], 1n, 0);
    const [row] = board.takeChanged();
    expect(row).toMatchObject({ reference: "65000.5", referenceNs: 7n, referenceFrom: "ticker", change24h: "10.25" });
    expect(row?.change24hPercent).toBeCloseTo((10.25 / 65000.5) * 100, 12);
    expect(board.referencesDue("binance", 0)).toEqual([]);
    // a newer ticker's open moves it; a candle's answer does not replace it
    board.ticker("binance", "BTC/USDT", DAY_NS + 9n, create(TickerSchema, { lastPrice: "64990.5", open24h: "65001" }));
    board.reference("binance", "BTC/USDT", "1", 1n, 0);
    const [next] = board.takeChanged();
    expect(next).toMatchObject({ reference: "65001", referenceNs: 9n, referenceFrom: "ticker", change24h: "-10.5" });
  });

  test("a stream that states none keeps the snapshot's, which the snapshot states while the stream feeds the row", () => {
    const board = new Board();
    // Binance spot: its stream is best bid and ask only
    board.ticker("binance", "BTC/USDT", 10n, ticker("65010.75"), 1_000);
    board.takeChanged();
    expect(board.snapshot("binance", [opened("BTC/USDT", "65100", "65000.5", 20n)], 20n, 1_001)).toBe(0);
    const [row] = board.takeChanged();
    expect(row).toMatchObject({ last: "65010.75", source: "stream", reference: "65000.5", change24h: "10.25" });
    board.ticker("binance", "BTC/USDT", 30n, ticker("65020.75"), 1_002);
    expect(board.takeChanged()[0]).toMatchObject({ reference: "65000.5", referenceFrom: "ticker", change24h: "20.25" });
    expect(board.referencesDue("binance", 1_002)).toEqual([]);
  });

  test("a venue that states none falls back to its candles; a later ticker stating it wins", () => {
    const board = new Board();
    board.snapshot("kraken", [quoted("BTC/USDT", "65010.75", 5n)], 5n, 0); // GetTickers: none
    expect(board.referencesDue("kraken", 0)).toEqual(["BTC/USDT"]);
    board.reference("kraken", "BTC/USDT", "64000", 3n, 0);
    expect(board.takeChanged()[0]).toMatchObject({ reference: "64000", referenceFrom: "candle" });
    const streamed = create(TickerSchema, { lastPrice: "65010.75", open24h: "65000.5" }); // its stream: stated
    board.ticker("kraken", "BTC/USDT", DAY_NS + 6n, streamed, 1);
    expect(board.takeChanged()[0]).toMatchObject({ reference: "65000.5", referenceNs: 6n, referenceFrom: "ticker" });
    expect(board.referencesDue("kraken", 10 * REFERENCE_MS)).toEqual([]);
  });

  test("an open that is no decimal is not one", () => {
    const board = new Board();
    board.snapshot("v", [opened("BTC/USDT", "1", "x", 5n)], 5n, 0);
    expect(board.takeChanged()[0]).toMatchObject({ reference: "", referenceFrom: "", change24h: "" });
    expect(board.referencesDue("v", 0)).toEqual(["BTC/USDT"]);
  });
});

describe("symbolAssets", () => {
  test("the base and quote of a unified symbol", () => {
    expect(symbolAssets("BTC/USDT")).toEqual({ base: "BTC", quote: "USDT" });
    expect(symbolAssets("ETH/USDT:USDT")).toEqual({ base: "ETH", quote: "USDT" });
    expect(symbolAssets("BTC/USD:BTC-250328")).toEqual({ base: "BTC", quote: "USD" });
    expect(symbolAssets("BTCUSDT")).toEqual({ base: "", quote: "" });
  });
});

describe("volume24h", () => {
  test("in the quote asset when the venue states it, else in the base asset", () => {
    expect(volume24h(row("BTC/USDT", "12.5", "812634.375"))).toEqual({ value: "812634.375", asset: "USDT" });
    expect(volume24h(row("BTC/USD", "12.5", ""))).toEqual({ value: "12.5", asset: "BTC" });
    expect(volume24h(row("BTC/USDT", "", ""))).toEqual({ value: "", asset: "" });
  });
});
