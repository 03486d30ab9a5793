// The Backtest page's form: the strategies the hub can run (ListStrategies, ticked), the venue
// and symbols (none: each strategy's own), the range in UTC (the last hour unless changed; the
// presets set it to end now), the latencies (the model's delays, or each order at its live
// twin's recorded arrival), the bars the strategies' sources run on ("Bars": their own, or one
// timeframe for them all, e.g. 1m over a venue's downloaded history), and under "more" the curve's step, the advisor's timeframe and cap,
// the starting equity and the advisor's LLM. Read, it gives a run's options or what is wrong.
import type { OptionsDraft } from "../api/backtest";
import type { StrategyInfo } from "../gen/trademesh/backtest/v1/backtest_pb";
import { isDecimal, isPositiveDecimal } from "../lib/decimal";
import { fill, h } from "../ui/dom";
import { barsChoices, barsOnPick } from "./bars";
import { parseUtcInput, utcInputValue } from "./figures";

const PRESETS: readonly [string, string, number][] = [
  ["5m", "last 5 min", 5 * 60_000],
  ["15m", "last 15 min", 15 * 60_000],
  ["1h", "last hour", 3_600_000],
  ["1d", "last day", 86_400_000],
];
const DEFAULT_RANGE_MS = 3_600_000;

function text(id: string, label: string, placeholder: string): HTMLInputElement {
  return h("input", { id, type: "text", "aria-label": label, placeholder, inputmode: "decimal", size: 8 });
}

/** A time to the second, read as UTC. */
function utcInput(id: string, label: string): HTMLInputElement {
  return h("input", { id, type: "datetime-local", step: 1, "aria-label": label });
}

/** A form's field: its label and input. */
function field(label: string, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

export type FormResult = { options: OptionsDraft } | { error: string };

export class BacktestForm {
  readonly root: HTMLElement;
  readonly runButton = h("button", { id: "backtest-run", type: "submit" }, "Run");
  readonly message = h("p", { id: "backtest-message", class: "message" });
  private readonly strategies = h("fieldset", { id: "backtest-strategies", class: "strategies" });
  private readonly venue = h("input", {
    id: "backtest-venue",
    type: "text",
    "aria-label": "venue",
    placeholder: "sim",
    size: 8,
  });
  private readonly symbols = h("input", {
    id: "backtest-symbols",
    type: "text",
    "aria-label": "symbols",
    placeholder: "each strategy's own",
    size: 22,
  });
  private readonly from = utcInput("backtest-from", "from (UTC)");
  private readonly to = utcInput("backtest-to", "to (UTC)");
  private readonly latency = h(
    "select",
    { id: "backtest-latency", "aria-label": "latency" },
    h("option", { value: "model" }, "model"),
    h("option", { value: "recorded" }, "recorded (live arrivals)"),
  );
  private readonly bars = h(
    "select",
    { id: "backtest-bars", "aria-label": "bars" },
    ...barsChoices().map((c) => h("option", { value: c.value }, c.label)),
  );
  private readonly orderLatency = text("backtest-order-latency", "order latency (ms)", "20");
  private readonly reportLatency = text("backtest-report-latency", "report latency (ms)", "20");
  private readonly sample = text("backtest-sample", "curve step (s)", "60");
  private readonly timeframe = h("input", {
    id: "backtest-timeframe",
    type: "text",
    "aria-label": "advisor timeframe",
    placeholder: "1m", // a run's default: the advisor as `trademesh up` runs it
    size: 4,
  });
  private readonly share = text("backtest-max-share", "max notional share", "0.008");
  private readonly equity = text("backtest-equity", "starting equity", "100000");
  private readonly llm = h(
    "select",
    { id: "backtest-llm", "aria-label": "advisor LLM" },
    h("option", { value: "off" }, "off"),
    h("option", { value: "recorded" }, "recorded answers"),
  );

  constructor(onRun: (options: OptionsDraft) => void) {
    this.range(DEFAULT_RANGE_MS);
    fill(this.strategies, h("legend", {}, "Strategies"), h("span", { class: "empty" }, "loading…"));
    const presets = PRESETS.map(([key, label, ms]) => {
      const button = h("button", { id: `backtest-range-${key}`, type: "button", class: "preset" }, label);
      button.addEventListener("click", () => this.range(ms));
      return button;
    });
    const form = h(
      "form",
      { id: "backtest-form", class: "backtest-form" },
      this.strategies,
      h(
        "div",
        { class: "fields" },
        field("Venue", this.venue),
        field("Symbols", this.symbols),
        field("From (UTC)", this.from),
        field("To (UTC)", this.to),
        h("div", { class: "presets" }, ...presets),
      ),
      h(
        "div",
        { class: "fields" },
        field("Bars", this.bars),
        field("Latency", this.latency),
        field("Order latency (ms)", this.orderLatency),
        field("Report latency (ms)", this.reportLatency),
        h(
          "details",
          { class: "more" },
          h("summary", {}, "more"),
          h(
            "div",
            { class: "fields" },
            field("Curve step (s)", this.sample),
            field("Advisor timeframe", this.timeframe),
            field("Max notional share", this.share),
            field("Starting equity", this.equity),
            field("Advisor LLM", this.llm),
          ),
        ),
        this.runButton,
      ),
      this.message,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const read = this.read();
      if ("error" in read) this.say(read.error, "error");
      else onRun(read.options);
    });
    this.root = form;
  }

  /** The strategies to tick (the ticked ones stay ticked; the only one is ticked). */
  setStrategies(list: readonly StrategyInfo[]): void {
    const ticked = new Set(this.ticked());
    const boxes = list.map((s) =>
      h(
        "label",
        { class: "strategy", title: [s.description, s.symbols.join(", ")].filter(Boolean).join(" · ") },
        h("input", {
          type: "checkbox",
          name: "strategy",
          value: s.name,
          "data-strategy": s.name,
          checked: ticked.has(s.name) || list.length === 1,
        }),
        ` ${s.name}`,
        s.symbols.length > 0 ? h("span", { class: "who" }, ` (${s.symbols.join(", ")})`) : null,
      ),
    );
    const none = list.length === 0 ? h("span", { class: "empty" }, "the hub has no strategies") : null;
    fill(this.strategies, h("legend", {}, "Strategies"), ...boxes, none);
    this.strategies.dataset.count = String(list.length);
  }

  /** Shows a message under the form (tone "ok", "error" or "" for plain). */
  say(text: string, tone: string): void {
    this.message.textContent = text;
    this.message.dataset.tone = tone;
  }

  /** A venue and range picked elsewhere (a coverage strip's held range), and the bars of its
   * series' timeframe. */
  pick(venue: string, startNs: bigint, endNs: bigint, timeframe: string): void {
    this.venue.value = venue;
    this.bars.value = barsOnPick(this.bars.value, timeframe);
    this.from.value = utcInputValue(Number(startNs / 1_000_000n));
    this.to.value = utcInputValue(Number(endNs / 1_000_000n));
  }

  /** The range ending now, `ms` long. */
  private range(ms: number): void {
    const now = Date.now();
    this.to.value = utcInputValue(now);
    this.from.value = utcInputValue(now - ms);
  }

  private ticked(): string[] {
    return [...this.strategies.querySelectorAll<HTMLInputElement>("input[name=strategy]:checked")].map((b) => b.value);
  }

  /** The run's options, or what is wrong with the form. */
  read(): FormResult {
    const strategies = this.ticked();
    if (strategies.length === 0) return { error: "pick at least one strategy" };
    const startNs = parseUtcInput(this.from.value);
    const endNs = parseUtcInput(this.to.value);
    if (startNs === null || endNs === null) return { error: "the range needs a from and a to time (UTC)" };
    if (endNs <= startNs) return { error: "the range ends before it starts" };
    for (const [input, name, positive] of [
      [this.orderLatency, "order latency", false],
      [this.reportLatency, "report latency", false],
      [this.sample, "curve step", true],
      [this.share, "max notional share", true],
      [this.equity, "starting equity", true],
    ] as const) {
      const value = input.value.trim();
      if (value !== "" && !(positive ? isPositiveDecimal(value) : isDecimal(value))) {
        return { error: `${name}: ${positive ? "a number above 0" : "a number, 0 or more"}` };
      }
    }
    const symbols = this.symbols.value
      .split(/[\s,]+/)
      .map((s) => s.trim().toUpperCase())
      .filter((s) => s !== "");
    return {
      options: {
        strategies,
        venue: this.venue.value.trim(),
        symbols,
        startNs,
        endNs,
        orderLatencyMs: this.orderLatency.value.trim(),
        reportLatencyMs: this.reportLatency.value.trim(),
        sampleS: this.sample.value.trim(),
        timeframe: this.timeframe.value.trim(),
        maxNotionalShare: this.share.value.trim(),
        startingEquity: this.equity.value.trim(),
        llm: this.llm.value,
        latency: this.latency.value,
        bars: this.bars.value,
      },
    };
  }
}
