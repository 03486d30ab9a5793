// The Backtest page (`#/backtest`, a run's result open at `#/backtest/<run id>`): the backtest
// hub's runs of strategies over recorded history (trademesh backtester, docs/backtest.md). A form
// starts a run (backtest/form); its progress follows live (WatchProgress on the tab's Mux stream,
// backtest/progress) with a Cancel button; the runs list (backtest/runs) opens a run's result: the
// metrics per strategy (backtest/tables), the equity and drawdown curves (backtest/curves), the
// trades on the price chart (backtest/trades-chart) and the round trips; two runs picked in the
// list are compared side by side (their metrics, both account curves on one chart). Its loops
// run only while it is shown.
import {
  cancelBacktest,
  type OptionsDraft,
  result,
  runs,
  startBacktest,
  strategies,
  watchProgress,
} from "../api/backtest";
import type { Clients } from "../api/clients";
import { classify } from "../api/errors";
import { coverage } from "../api/history";
import { instrumentsOf } from "../api/instruments";
import type { LiveStreams } from "../api/live";
import { type GetResultResponse, type RunSummary, RunStatus } from "../gen/trademesh/backtest/v1/backtest_pb";
import type { Connection } from "../lib/connection";
import { childController, follow, type LoopContext, poll } from "../lib/loop";
import { fill, h, panel, showStatus } from "../ui/dom";
import { CoverageStrips, holesIn, holesText } from "./coverage";
import { CurveChart, type CurveLine } from "./curves";
import { ended, optionsText, rangeText, statusName } from "./figures";
import { BacktestForm } from "./form";
import { ProgressView } from "./progress";
import { RunList } from "./runs";
import { type Compared, compareTable, metricsTable, tripsTable } from "./tables";
import { TradesChart } from "./trades-chart";

const RUNS_POLL_MS = 3000;
const STRATEGIES_POLL_MS = 30_000;
const COVERAGE_POLL_MS = 60_000;
// The strips' timeframe: the advisor's bars as a run takes them by default, and archives' finest.
const COVERAGE_TIMEFRAME = "1m";
const TOTAL = "total";

/** The hash of the Backtest page with `runId`'s result open (or none). */
export function backtestHash(runId: string | null): string {
  return runId === null ? "#/backtest" : `#/backtest/${encodeURIComponent(runId)}`;
}

/** A result's curves as chart lines: the account's first (drawn thick, its drawdown under it). */
function resultLines(reply: GetResultResponse): CurveLine[] {
  const curves = [...reply.curves].sort((a, b) =>
    a.strategy === TOTAL ? -1 : b.strategy === TOTAL ? 1 : a.strategy < b.strategy ? -1 : 1,
  );
  return curves.map((c) => ({
    key: c.strategy,
    label: c.strategy,
    points: c.points,
    main: c.strategy === TOTAL,
    attrs: { "data-strategy": c.strategy },
  }));
}

export class BacktestPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly runsStatus: HTMLElement;
  private readonly progressStatus = h("span", { class: "status", id: "backtest-progress-status" });
  private readonly form: BacktestForm;
  private readonly coverage: CoverageStrips;
  // The run whose range has holes, warned about once: Run again starts it.
  private warned = "";
  private readonly progress: ProgressView;
  private readonly list: RunList;
  private readonly resultPanel: HTMLElement;
  private readonly resultStatus: HTMLElement;
  private readonly resultHead = h("div", { id: "backtest-result-head", class: "result-head" });
  private readonly metrics = h("div", { class: "scroll", id: "backtest-metrics-wrap" });
  private readonly equity = new CurveChart("backtest-equity-chart");
  private readonly trades: TradesChart;
  private readonly trips = h("div", { id: "backtest-trips-wrap" });
  private readonly comparePanel: HTMLElement;
  private readonly compareStatus: HTMLElement;
  private readonly compareHead = h("div", { class: "result-head", id: "backtest-compare-head" });
  private readonly compareMetrics = h("div", { class: "scroll" });
  private readonly compareChart = new CurveChart("backtest-compare-chart");
  private controller: AbortController | null = null;
  private watchController: AbortController | null = null;
  private resultController: AbortController | null = null;
  private shownRun = "";
  // Each strategy's own symbols (ListStrategies): a run's when its options name none.
  private readonly strategySymbols = new Map<string, readonly string[]>();

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly connection: Connection,
    private readonly appSignal: AbortSignal,
  ) {
    this.form = new BacktestForm((options) => void this.run(options));
    this.coverage = new CoverageStrips((venue, startNs, endNs, timeframe) =>
      this.form.pick(venue, startNs, endNs, timeframe),
    );
    this.progress = new ProgressView((runId) => void this.cancel(runId));
    this.list = new RunList(
      (run) => (window.location.hash = backtestHash(run.runId)),
      (runIds) => void this.compare(runIds),
    );
    this.trades = new TradesChart(clients, () => this.resultController?.signal);
    const head = panel(
      "Backtest",
      "backtest",
      this.form.root,
      h("h3", {}, "Coverage"),
      this.coverage.root,
      h("h3", {}, "Progress ", this.progressStatus),
      this.progress.root,
    );
    this.status = head.status;
    const runsPanel = panel("Runs", "backtest-runs-panel", this.list.root);
    this.runsStatus = runsPanel.status;
    const resultPanel = panel(
      "Result",
      "backtest-result",
      this.resultHead,
      this.metrics,
      h("h3", {}, "Equity and drawdown"),
      this.equity.root,
      h("h3", {}, "Trades"),
      this.trades.root,
      h("h3", {}, "Round trips"),
      this.trips,
    );
    this.resultPanel = resultPanel.root;
    this.resultPanel.hidden = true;
    this.resultStatus = resultPanel.status;
    const close = h("button", { id: "backtest-compare-close", type: "button" }, "Close");
    close.addEventListener("click", () => (this.comparePanel.hidden = true));
    const comparePanel = panel(
      "Compare",
      "backtest-compare-view",
      h("div", { class: "ledger-head" }, this.compareHead, close),
      this.compareMetrics,
      h("h3", {}, "Equity curves"),
      this.compareChart.root,
    );
    this.comparePanel = comparePanel.root;
    this.comparePanel.hidden = true;
    this.compareStatus = comparePanel.status;
    this.root = h(
      "main",
      { id: "backtest-page", class: "page", hidden: true },
      h("div", { class: "backtest-grid" }, head.root, runsPanel.root),
      this.comparePanel,
      this.resultPanel,
    );
  }

  /** Shows the page (with `runId`'s result open, when given) and runs its loops. */
  show(runId: string | null): void {
    if (this.controller === null) {
      this.controller = childController(this.appSignal);
      const signal = this.controller.signal;
      void poll(this.context(signal, this.status), STRATEGIES_POLL_MS, async () => {
        const found = await strategies(this.clients, signal);
        if (signal.aborted) return;
        this.form.setStrategies(found);
        for (const s of found) this.strategySymbols.set(s.name, s.symbols);
      });
      void poll(this.context(signal, this.runsStatus), RUNS_POLL_MS, () => this.refreshRuns(signal));
      void this.followCoverage(signal);
      // A run followed before the page was left: followed again.
      if (this.progress.running) this.watch(this.progress.runId);
    }
    if (runId !== null && runId !== this.shownRun) void this.open(runId);
  }

  /** Stops the page's loops (another page is shown). */
  hide(): void {
    this.controller?.abort();
    this.controller = null;
    this.watchController = null;
    this.resultController = null;
    this.shownRun = "";
  }

  private context(signal: AbortSignal, status: HTMLElement): LoopContext {
    return { signal, connection: this.connection, onStatus: (s) => showStatus(status, s) };
  }

  private async refreshRuns(signal: AbortSignal): Promise<void> {
    const found = await runs(this.clients, signal);
    if (!signal.aborted) this.list.show(found);
  }

  /** The coverage strips, read now and every COVERAGE_POLL_MS; a failure leaves the page running. */
  private async followCoverage(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        const found = await coverage(this.clients, COVERAGE_TIMEFRAME, signal);
        if (!signal.aborted) this.coverage.show(found);
      } catch (error) {
        if (!signal.aborted) this.coverage.failed(classify(error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, COVERAGE_POLL_MS));
    }
  }

  /** True when the run's range has holes in what is held of its symbols, said once: a second Run starts it. */
  private holesWarned(options: OptionsDraft): boolean {
    const venue = options.venue || "sim";
    const symbols = options.symbols?.length
      ? options.symbols
      : (options.strategies ?? []).flatMap((name) => this.strategySymbols.get(name) ?? []);
    const holes = holesIn(this.coverage.series, venue, symbols, options.startNs ?? 0n, options.endNs ?? 0n);
    const key = `${venue} ${symbols.join(",")} ${options.startNs} ${options.endNs}`;
    if (holes.length === 0 || this.warned === key) {
      this.warned = "";
      this.form.runButton.textContent = "Run";
      return false;
    }
    this.warned = key;
    this.form.say(`${holesText(holes)}. Run again to run it anyway.`, "warn");
    this.form.runButton.textContent = "Run anyway";
    return true;
  }

  private async run(options: OptionsDraft): Promise<void> {
    const signal = this.controller?.signal;
    if (signal === undefined || this.holesWarned(options)) return;
    this.form.runButton.disabled = true;
    this.form.say("starting…", "");
    try {
      const runId = await startBacktest(this.clients, options, signal);
      this.form.say(`run ${runId} started`, "ok");
      this.progress.follow(runId);
      this.watch(runId);
      void this.refreshRuns(signal).catch(() => undefined); // the poll reports failures
    } catch (error) {
      if (!signal.aborted) this.form.say(`not started: ${classify(error).message}`, "error");
    } finally {
      this.form.runButton.disabled = false;
    }
  }

  private async cancel(runId: string): Promise<void> {
    const signal = this.controller?.signal;
    if (signal === undefined) return;
    this.progress.cancelButton.disabled = true;
    try {
      const cancelled = await cancelBacktest(this.clients, runId, signal);
      this.form.say(cancelled ? `run ${runId} cancelled` : `run ${runId} had ended already`, "");
    } catch (error) {
      if (!signal.aborted) this.form.say(`not cancelled: ${classify(error).message}`, "error");
      this.progress.cancelButton.disabled = !this.progress.running;
    }
  }

  /** Follows `runId`'s progress until it ends (again after a lost stream). */
  private watch(runId: string): void {
    const parent = this.controller?.signal;
    if (parent === undefined) return;
    this.watchController?.abort();
    const controller = childController(parent);
    this.watchController = controller;
    const ctx = this.context(controller.signal, this.progressStatus);
    void follow(
      ctx,
      (signal, opened) => watchProgress(this.live, runId, signal, opened),
      (message) => {
        const progress = message.progress;
        if (progress === undefined || controller.signal.aborted) return;
        this.progress.update(progress);
        if (!ended(progress.status)) return;
        controller.abort();
        showStatus(this.progressStatus, { tone: "ok", text: statusName(progress.status) });
        this.finished(runId, progress.status);
      },
    );
  }

  /** A run followed ended: the list shows it, and its result opens once done. */
  private finished(runId: string, status: RunStatus): void {
    const signal = this.controller?.signal;
    if (signal !== undefined) void this.refreshRuns(signal).catch(() => undefined);
    if (status !== RunStatus.DONE) return;
    if (window.location.hash === backtestHash(runId)) void this.open(runId);
    else window.location.hash = backtestHash(runId);
  }

  /** Opens a run: its progress while it runs, its result once it has ended. */
  private async open(runId: string): Promise<void> {
    const parent = this.controller?.signal;
    if (parent === undefined) return;
    this.shownRun = runId;
    this.list.opened(runId);
    const known: RunSummary | undefined = this.list.runs.find((r) => r.runId === runId);
    // The list may not know yet that the run followed has ended.
    const followedEnded = this.progress.runId === runId && !this.progress.running;
    if (known?.status === RunStatus.RUNNING && !followedEnded) {
      if (this.progress.runId !== runId || !this.progress.running) {
        this.progress.follow(runId);
        this.watch(runId);
      }
      return;
    }
    this.resultController?.abort();
    const controller = childController(parent);
    this.resultController = controller;
    this.resultPanel.hidden = false;
    showStatus(this.resultStatus, { tone: "warn", text: "loading…" });
    try {
      const reply = await result(this.clients, runId, controller.signal);
      if (controller.signal.aborted) return;
      await this.drawResult(runId, reply);
      showStatus(this.resultStatus, { tone: "ok", text: statusName(reply.run?.status ?? RunStatus.UNSPECIFIED) });
    } catch (error) {
      if (controller.signal.aborted) return;
      showStatus(this.resultStatus, { tone: "error", text: classify(error).message });
    }
  }

  private async drawResult(runId: string, reply: GetResultResponse): Promise<void> {
    const run = reply.run;
    const status = statusName(run?.status ?? RunStatus.UNSPECIFIED);
    this.resultPanel.dataset.runId = runId;
    this.resultPanel.dataset.status = status;
    fill(
      this.resultHead,
      h("div", {}, h("span", { class: `badge run-${status}` }, status), " ", h("code", {}, runId)),
      h("div", { class: "who" }, optionsText(run?.options), " · ", rangeText(run?.options)),
      run?.error ? h("p", { class: "error", id: "backtest-result-error" }, run.error) : null,
    );
    fill(this.metrics, metricsTable(reply.metrics));
    this.equity.show(resultLines(reply));
    const venue = run?.options?.venue || "sim";
    const instruments = instrumentsOf(this.clients, this.appSignal);
    await instruments.ready(venue); // the trips are drawn once: at the venue's ticks when it has them
    fill(this.trips, tripsTable(reply.trips, (symbol) => instruments.tick(venue, symbol)));
    const own = (run?.options?.strategies ?? []).flatMap((name) => this.strategySymbols.get(name) ?? []);
    await this.trades.show(run?.options, reply.fills, own);
  }

  /** Two runs side by side: their metrics, and both account curves on one chart. */
  private async compare(runIds: readonly string[]): Promise<void> {
    const signal = this.controller?.signal;
    if (signal === undefined || runIds.length < 2) return;
    this.comparePanel.hidden = false;
    this.comparePanel.dataset.runs = runIds.join(",");
    showStatus(this.compareStatus, { tone: "warn", text: "loading…" });
    try {
      const replies = await Promise.all(runIds.map((id) => result(this.clients, id, signal)));
      if (signal.aborted) return;
      const names = ["A", "B", "C", "D"];
      const compared: Compared[] = replies.map((reply, i) => ({
        runId: runIds[i]!,
        name: names[i] ?? String(i + 1),
        metrics: reply.metrics,
      }));
      fill(
        this.compareHead,
        ...replies.map((reply, i) =>
          h(
            "div",
            { "data-run-id": runIds[i]! },
            h("strong", {}, `${compared[i]!.name}: `),
            h("code", {}, runIds[i]!),
            h("span", { class: "who" }, ` ${optionsText(reply.run?.options)} · ${rangeText(reply.run?.options)}`),
          ),
        ),
      );
      fill(this.compareMetrics, compareTable(compared));
      this.compareChart.show(
        replies.map((reply, i) => ({
          key: runIds[i]!,
          label: `${compared[i]!.name} · account (${reply.run?.options?.strategies.join(", ") ?? ""})`,
          points: reply.curves.find((c) => c.strategy === TOTAL)?.points ?? [],
          main: true,
          attrs: { "data-run-id": runIds[i]! },
        })),
      );
      showStatus(this.compareStatus, { tone: "ok", text: `${runIds.length} runs` });
      this.comparePanel.scrollIntoView({ block: "nearest" });
    } catch (error) {
      if (!signal.aborted) showStatus(this.compareStatus, { tone: "error", text: classify(error).message });
    }
  }
}
