// The Advisor page (`#/advisor`, `#/advisor/<decision id>`): the advisor's decision log, newest
// first, from the recorded decisions (ListDecisions, polled) and the live ones (WatchDecisions,
// a subscription on the tab's Mux stream, so dry runs show too); a row opens its decision
// (ui/decision-view) below, and the calibration panel (ui/calibration) shows the reliability
// diagram of that decision's regime. Each row opens its decision's trace (ledger/trace). Its loops
// run only while the page is shown.
import type { Clients } from "../api/clients";
import { getDecision, recentDecisions, watchDecisions } from "../api/advisor";
import { classify } from "../api/errors";
import type { LiveStreams } from "../api/live";
import { DecisionLog } from "../advisor/decisions";
import { stageName } from "../advisor/stages";
import { type Decision, Outcome, SynthesisSource } from "../gen/trademesh/advisor/v1/messages_pb";
import { Direction } from "../gen/trademesh/signal/v1/signal_pb";
import { traceButton } from "../ledger/trace";
import { clockTime, label } from "../lib/format";
import { childController, follow, poll } from "../lib/loop";
import { CalibrationPanel } from "./calibration";
import { DecisionView } from "./decision-view";
import { fill, h, panel, table, throttled } from "./dom";
import type { PageLoops } from "./page-loops";
import { advisorHash } from "./pages";

const BACKLOG_POLL_MS = 10_000;
const COLUMNS = ["time", "market", "strategy", "signal", "outcome", "conviction", "synthesis", "flags", "blocked at", ""];

function synthesisText(decision: Decision): string {
  if (decision.synthesis === undefined) return "–";
  return decision.deterministicSynthesis ? "deterministic" : label(SynthesisSource, decision.synthesis.source);
}

function convictionText(decision: Decision): string {
  const c = decision.conviction;
  return c === undefined ? "–" : `${c.raw} → ${c.calibrated || "–"}`;
}

export class AdvisorPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body = h("tbody", { id: "decisions-body" });
  private readonly log = new DecisionLog();
  private readonly view = new DecisionView();
  private readonly calibration: CalibrationPanel;
  private readonly redraw = throttled(() => this.draw());
  private fetchController: AbortController | null = null;
  private selected: string | null = null;

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    const list = h("div", { class: "decision-list" }, table(COLUMNS, this.body));
    const logPanel = panel("Advisor decisions", "decisions", list);
    this.status = logPanel.status;
    this.calibration = new CalibrationPanel(clients, loops.connection);
    const detail = h("div", { class: "advisor-grid" }, this.view.root, this.calibration.root);
    this.root = h("main", { id: "advisor-page", class: "page", hidden: true }, logPanel.root, detail);
    this.draw();
  }

  /** Shows the page with `decisionId` open (or none), and runs its loops. */
  show(decisionId: string | null): void {
    const signal = this.loops.start();
    const starting = signal !== null;
    if (starting) this.start(signal);
    if (!starting && decisionId === this.selected) return;
    this.selected = decisionId;
    this.open();
    this.redraw();
  }

  /** Stops the page's loops (another page is shown). */
  hide(): void {
    this.loops.stop();
    this.selected = null;
    this.view.close();
  }

  private start(signal: AbortSignal): void {
    void poll(this.loops.context(signal, this.status), BACKLOG_POLL_MS, async () => {
      const decisions = await recentDecisions(this.clients, signal);
      if (!signal.aborted) this.added(decisions);
    });
    void follow(
      this.loops.context(signal, this.status),
      (signal, opened) => watchDecisions(this.live, signal, opened),
      (batch) => {
        if (!signal.aborted) this.added(batch.decisions);
      },
    );
    void this.calibration.run(signal);
  }

  private added(decisions: readonly Decision[]): void {
    if (!this.log.add(decisions)) return;
    this.redraw();
    // A decision asked for by its URL before it was listed is shown once it is.
    const id = this.selected;
    if (id !== null && this.view.showing !== id && this.log.get(id) !== undefined) this.open();
  }

  /** Shows the selected decision: the log's copy, else the advisor's (GetDecision). */
  private open(): void {
    this.fetchController?.abort();
    const id = this.selected;
    const parent = this.loops.signal;
    if (id === null || parent === undefined) {
      this.view.close();
      return;
    }
    const known = this.log.get(id);
    if (known !== undefined) {
      this.display(known);
      return;
    }
    this.fetchController = childController(parent);
    const signal = this.fetchController.signal;
    this.view.say(id, "ok", "loading…");
    getDecision(this.clients, id, signal)
      .then((decision) => {
        if (!signal.aborted && this.selected === id) this.display(decision);
      })
      .catch((error: unknown) => {
        if (!signal.aborted && this.selected === id) this.view.say(id, "error", classify(error).message);
      });
  }

  private display(decision: Decision): void {
    this.view.show(decision);
    const regime = decision.conviction?.regime;
    if (regime !== undefined && regime !== "") this.calibration.show(regime);
  }

  private row(decision: Decision): HTMLElement {
    const signal = decision.signal;
    const outcome = label(Outcome, decision.outcome);
    const flags = decision.hallucinationFlags.length;
    const isBlocked = decision.outcome === Outcome.BLOCKED;
    const blocked = isBlocked ? `${stageName(decision.blockedStage)}: ${decision.blockReason}` : "";
    const signalText = signal === undefined ? "–" : `${label(Direction, signal.direction)} ${signal.conviction}`;
    return h(
      "tr",
      {
        "data-decision-id": decision.decisionId,
        "data-ts": String(decision.tsDecisionNs),
        "data-outcome": outcome,
        "data-flags": flags,
        "aria-selected": String(decision.decisionId === this.selected),
      },
      h("td", {}, h("a", { href: advisorHash(decision.decisionId) }, clockTime(decision.tsDecisionNs))),
      h("td", { "data-col": "market" }, `${decision.venue} ${decision.symbol}`),
      h("td", { "data-col": "strategy" }, decision.strategyId),
      h("td", { "data-col": "signal" }, signalText),
      h("td", { "data-col": "outcome", class: `outcome-${outcome}` }, outcome),
      h("td", { "data-col": "conviction", class: "num" }, convictionText(decision)),
      h("td", { "data-col": "synthesis" }, synthesisText(decision)),
      h("td", { "data-col": "flags", class: flags > 0 ? "flagged" : "" }, flags > 0 ? `⚠ ${flags}` : ""),
      h("td", { "data-col": "blocked", title: decision.blockReason }, blocked),
      h("td", { "data-col": "trace" }, traceButton(decision.decisionId, "this decision")),
    );
  }

  private draw(): void {
    const decisions = this.log.list();
    this.root.dataset.decisions = String(decisions.length);
    if (decisions.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "no decisions yet")));
    } else fill(this.body, ...decisions.map((decision) => this.row(decision)));
  }
}
