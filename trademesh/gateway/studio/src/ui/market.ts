// The market view: venue, symbol and timeframe pickers, the candlestick chart with the chosen
// detector instance's signals on it, and (through the feed) the order book ladder and recent
// trades of the selection, and for a derivative its derivatives strip (mark, index, funding, open
// interest: ui/derivatives) and its liquidations on the tape. A new selection ends the old subscription and starts a fresh one;
// another detector chosen (on the Strategies page) replaces the markers with its signals.
import { type Clients, unary } from "../api/clients";
import type { DetectorChoice } from "../api/detectors";
import type { LiveStreams } from "../api/live";
import type { Instrument } from "../gen/trademesh/common/v1/common_pb";
import type { Liquidation, Trade } from "../gen/trademesh/marketdata/v1/marketdata_pb";
import type { Signal } from "../gen/trademesh/signal/v1/signal_pb";
import type { Connection } from "../lib/connection";
import { childController, type LoopContext, type PanelStatus, poll } from "../lib/loop";
import type { OrderBook } from "../market/book";
import { CandleSeries, type Change } from "../market/candles";
import { type DerivativeFigures, isDerivative } from "../market/derivatives";
import { type FeedView, runFeed, type Selection } from "../market/feed";
import { runSignals } from "../market/signals";
import { TIMEFRAMES, type TimeframeOption } from "../market/timeframes";
import { CandleChart } from "./chart";
import { DerivativesStrip } from "./derivatives";
import { fill, h, panel, showStatus } from "./dom";
import type { Ladder } from "./ladder";
import type { Tape } from "./tape";

const INSTRUMENTS_REFRESH_MS = 60_000;
const PREFERRED_VENUE = "sim";

export class MarketView implements FeedView {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly chart = new CandleChart();
  private readonly strip = new DerivativesStrip();
  private readonly venueSelect = h("select", { id: "venue-select" });
  private readonly symbolSelect = h("select", { id: "symbol-select" });
  private readonly timeframeButtons = h("div", { class: "timeframes", role: "group" });
  private instruments: Instrument[] = [];
  private timeframe: TimeframeOption = TIMEFRAMES[1] ?? TIMEFRAMES[0]!;
  private venuesController: AbortController | null = null;
  private feedController: AbortController | null = null;
  private signalsController: AbortController | null = null;
  private current = "";

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly connection: Connection,
    private readonly appSignal: AbortSignal,
    private readonly ladder: Ladder,
    private readonly tape: Tape,
    private readonly onSelect: (venue: string, symbol: string) => void,
    private readonly detectors: DetectorChoice,
  ) {
    const controls = h("div", { class: "controls" }, this.venueSelect, this.symbolSelect, this.timeframeButtons);
    ({ root: this.root, status: this.status } = panel("Market", "market", controls, this.strip.root, this.chart.root));
    this.venueSelect.addEventListener("change", () => this.venueChanged());
    this.symbolSelect.addEventListener("change", () => this.startFeed());
    this.drawTimeframes();
    detectors.onChange(() => this.startSignals(), appSignal);
  }

  /** The registered venues (from the health board's poll); keeps the selection when it can. */
  setVenues(names: string[]): void {
    const known = [...this.venueSelect.options].map((o) => o.value);
    if (known.join() === names.join()) return;
    const previous = this.venueSelect.value;
    fill(this.venueSelect, ...names.map((name) => h("option", { value: name }, name)));
    const keep = names.includes(previous) ? previous : names.includes(PREFERRED_VENUE) ? PREFERRED_VENUE : names[0];
    this.venueSelect.value = keep ?? "";
    if (keep !== previous) this.venueChanged();
  }

  private drawTimeframes(): void {
    fill(
      this.timeframeButtons,
      ...TIMEFRAMES.map((option) => {
        const button = h(
          "button",
          { type: "button", "data-timeframe": option.label, "aria-pressed": String(option === this.timeframe) },
          option.label,
        );
        button.addEventListener("click", () => {
          this.timeframe = option;
          this.drawTimeframes();
          this.startFeed();
        });
        return button;
      }),
    );
  }

  private venueChanged(): void {
    this.venuesController?.abort();
    this.instruments = [];
    fill(this.symbolSelect);
    const venue = this.venueSelect.value;
    if (venue === "") return;
    this.venuesController = childController(this.appSignal);
    const ctx = this.context(this.venuesController.signal);
    void poll(ctx, INSTRUMENTS_REFRESH_MS, () => this.loadInstruments(venue, ctx.signal));
  }

  private async loadInstruments(venue: string, signal: AbortSignal): Promise<void> {
    const reply = await this.clients.marketData.listInstruments({ symbols: [] }, unary(signal, venue));
    const symbols = reply.instruments.filter((i) => i.active).map((i) => i.symbol);
    const previous = this.symbolSelect.value;
    this.instruments = reply.instruments;
    if ([...this.symbolSelect.options].map((o) => o.value).join() !== symbols.join()) {
      fill(this.symbolSelect, ...symbols.map((s) => h("option", { value: s }, s)));
      this.symbolSelect.value = symbols.includes(previous) ? previous : (symbols[0] ?? "");
    }
    this.startFeed();
  }

  private selection(): Selection | null {
    const venue = this.venueSelect.value;
    const symbol = this.symbolSelect.value;
    if (venue === "" || symbol === "") return null;
    const kind = this.instruments.find((i) => i.symbol === symbol)?.kind;
    return { venue, symbol, timeframe: this.timeframe, derivative: kind !== undefined && isDerivative(kind) };
  }

  /** Starts the feed of the selection, unless it is the one already running. */
  private startFeed(): void {
    const selection = this.selection();
    const key = selection === null ? "" : `${selection.venue}|${selection.symbol}|${selection.timeframe.label}`;
    if (key === this.current) return;
    this.current = key;
    this.feedController?.abort();
    this.feedController = null;
    if (selection === null) return;
    // Nothing of the previous selection stays in view while the new one connects.
    this.restart(new CandleSeries(selection.timeframe.seconds, selection.timeframe.offsetS), null);
    const instrument = this.instruments.find((i) => i.symbol === selection.symbol);
    const tick = instrument?.tickSize;
    if (tick !== undefined) this.chart.setTick(tick);
    this.strip.reset(selection.derivative, tick, instrument?.quoteAsset ?? "");
    this.onSelect(selection.venue, selection.symbol);
    this.feedController = childController(this.appSignal);
    void runFeed(this.context(this.feedController.signal), this.clients, this.live, selection, this);
    this.startSignals();
  }

  /** The markers of the selection from the chosen detector, none shown until they come. */
  private startSignals(): void {
    this.signalsController?.abort();
    this.chart.signals([]);
    const selection = this.selection();
    if (this.feedController === null || selection === null) return;
    this.signalsController = childController(this.feedController.signal);
    const detector = this.detectors.name;
    this.chart.root.dataset.signalsDetector = detector ?? "";
    const ctx = { ...this.context(this.signalsController.signal), onStatus: (s: PanelStatus) => this.signalsStatus(s) };
    const show = (list: Signal[]): void => this.chart.signals(list);
    void runSignals(ctx, this.clients, detector, selection.venue, selection.symbol, show);
  }

  /** The markers' poll reports on the chart (data-signals-status), not in the market's status:
   * a mesh without a detector has a chart all the same. */
  private signalsStatus(status: PanelStatus): void {
    this.chart.root.dataset.signalsStatus = status.text;
  }

  private context(signal: AbortSignal): LoopContext {
    return {
      signal,
      connection: this.connection,
      onStatus: (status) => {
        showStatus(this.status, status);
        // The side panels share the stream: the headline only, the details on hover.
        const headline = { tone: status.tone, text: status.text.split(/[(;]/)[0]?.trim() ?? "" };
        for (const element of [this.ladder.status, this.tape.status]) {
          showStatus(element, headline);
          element.title = status.text;
        }
      },
    };
  }

  // ---- FeedView: the feed's state, drawn

  restart(candles: CandleSeries, book: OrderBook | null): void {
    this.chart.reset(candles);
    this.ladder.show(book);
    this.tape.clear();
  }

  candles(candles: CandleSeries, change: Change | null): void {
    if (change === null) this.chart.reset(candles);
    else this.chart.apply(change, candles);
  }

  book(book: OrderBook): void {
    this.ladder.show(book);
  }

  trade(tsNs: bigint, trade: Trade): void {
    this.tape.add(tsNs, trade);
  }

  derivatives(figures: DerivativeFigures): void {
    this.strip.show(figures);
  }

  liquidation(tsNs: bigint, liquidation: Liquidation): void {
    this.tape.addLiquidation(tsNs, liquidation);
  }
}
