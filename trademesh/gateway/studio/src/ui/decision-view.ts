// One decision of the advisor, whole: its signal and outcome, the block (the stage and every
// reason) set apart when it was blocked, the conviction before and after calibration, the intent,
// each of the 8 stages with its status, time, summary, reasons and output, and the LLM synthesis
// with its trace and hallucination flags (ui/llm-trace). The page hands it a decision to draw; it
// draws again only when another one is shown, so what a reader opened stays open.
import { outputField, outputRows, stageKey, stageName } from "../advisor/stages";
import {
  type Decision,
  type Intent,
  Outcome,
  Stage,
  type StageResult,
  StageStatus,
} from "../gen/trademesh/advisor/v1/messages_pb";
import { Side } from "../gen/trademesh/common/v1/common_pb";
import { Direction } from "../gen/trademesh/signal/v1/signal_pb";
import { OrderType, TimeInForce } from "../gen/trademesh/tradeflow/v1/tradeflow_pb";
import { traceButton } from "../ledger/trace";
import { clockTime, duration, label } from "../lib/format";
import { amount, size } from "../lib/money";
import { convictionView } from "./conviction";
import { fill, h, panel, showStatus } from "./dom";
import { llmTrace } from "./llm-trace";

function stageOf(decision: Decision, stage: Stage): StageResult | undefined {
  return decision.stages.find((s) => s.stage === stage);
}

function head(decision: Decision): HTMLElement {
  const signal = decision.signal;
  const direction = signal === undefined ? "–" : label(Direction, signal.direction);
  const outcome = label(Outcome, decision.outcome);
  const market = `${decision.venue} ${decision.symbol}`;
  return h(
    "div",
    { class: "decision-head" },
    h("h3", { id: "decision-title" }, `${decision.strategyId} · ${market} · ${direction} ${signal?.conviction ?? ""}`),
    h("span", { id: "decision-outcome", class: `badge outcome-${outcome}`, "data-outcome": outcome }, outcome),
    decision.hypothetical ? h("span", { class: "badge", id: "decision-hypothetical" }, "hypothetical") : null,
    h("span", { class: "who" }, `${clockTime(decision.tsDecisionNs)} · model ${decision.modelVersion || "none"}`),
    h("span", { class: "who code", title: `signal ${decision.signalId}` }, decision.decisionId),
    traceButton(decision.decisionId, "this decision"),
  );
}

function block(decision: Decision): HTMLElement | null {
  if (decision.outcome !== Outcome.BLOCKED) return null;
  const stage = stageName(decision.blockedStage);
  const reasons = stageOf(decision, decision.blockedStage)?.reasons ?? [];
  const shown = reasons.length > 0 ? reasons : decision.blockReason.split("; ").filter((r) => r !== "");
  return h(
    "section",
    { id: "decision-block", class: "block", role: "alert", "data-stage": stageKey(decision.blockedStage) },
    h("strong", {}, `Blocked at ${stage}`),
    h("ul", { class: "reasons" }, ...shown.map((reason) => h("li", {}, reason))),
  );
}

/** The intent in words; its size and the amount it risks (in the quote asset) as people read them
 * (lib/money), each exact value on hover; its prices as the advisor set them (at the tick). */
function intent(found: Intent | undefined): HTMLElement | null {
  if (found === undefined) return null;
  const entry = `${label(OrderType, found.entryType)} ${found.entryPrice}`;
  const text = h(
    "p",
    {},
    `${label(Side, found.side)} `,
    size(found.size),
    ` ${found.symbol} on ${found.venue} · entry ${entry} · stop ${found.stopLoss || "–"} · ` +
      `target ${found.takeProfit || "–"} · ${label(TimeInForce, found.timeInForce)} · risk `,
    amount(found.riskAmount),
    ` · expires ${clockTime(found.expiresAtNs)}${found.reduceOnly ? " · reduce-only" : ""}`,
  );
  return h("section", { id: "decision-intent", class: "intent" }, h("h3", {}, "Intent"), text);
}

function stageItem(result: StageResult, index: number): HTMLElement {
  const status = label(StageStatus, result.status);
  const rows = outputRows(result.outputJson).map((row) =>
    h("tr", { "data-key": row.key }, h("th", {}, row.key), h("td", { title: row.full }, row.text)),
  );
  const output =
    rows.length === 0
      ? h("p", { class: "empty" }, "no output: not run")
      : h("table", { class: "output" }, h("tbody", {}, ...rows));
  const reasons = result.reasons.map((reason) => h("li", {}, reason));
  return h(
    "li",
    { class: `stage status-${status}`, "data-stage": stageKey(result.stage), "data-status": status },
    h(
      "div",
      { class: "stage-head" },
      h("span", { class: "order" }, `${index + 1}.`),
      h("strong", {}, stageName(result.stage)),
      h("span", { class: `badge status-${status}` }, status),
      h("span", { class: "who" }, result.durationNs > 0n ? duration(result.durationNs) : ""),
      h("span", { class: "summary" }, result.summary),
    ),
    reasons.length > 0 ? h("ul", { class: "reasons" }, ...reasons) : null,
    h("details", {}, h("summary", {}, "output"), output),
  );
}

export class DecisionView {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly body = h("div", { class: "decision-body" });
  private shown: string | null = null;

  constructor() {
    ({ root: this.root, status: this.status } = panel("Decision", "decision-view", this.body));
    this.root.hidden = true;
  }

  /** The id of the decision drawn; null while none is (or one is being fetched). */
  get showing(): string | null {
    return this.shown;
  }

  /** Draws `decision` (nothing when it is already shown). */
  show(decision: Decision): void {
    this.root.hidden = false;
    if (this.shown === decision.decisionId) return;
    this.shown = decision.decisionId;
    this.root.dataset.decisionId = decision.decisionId;
    const synthesis = stageOf(decision, Stage.SYNTHESIS);
    const final = decision.intent?.conviction || outputField(synthesis?.outputJson ?? "", "final_conviction");
    fill(
      this.body,
      head(decision),
      block(decision),
      convictionView(decision, final),
      intent(decision.intent),
      h("h3", {}, "Stages"),
      h("ol", { id: "decision-stages", class: "stages" }, ...decision.stages.map(stageItem)),
      llmTrace(decision, synthesis?.reasons.join("; ") ?? ""),
    );
    showStatus(this.status, { tone: "ok", text: "" });
  }

  /** The decision `decisionId` is being fetched, or could not be: says so in the panel. */
  say(decisionId: string, tone: "ok" | "error", text: string): void {
    this.root.hidden = false;
    this.root.dataset.decisionId = decisionId;
    if (this.shown !== decisionId) fill(this.body);
    this.shown = null;
    showStatus(this.status, { tone, text });
  }

  close(): void {
    this.root.hidden = true;
    this.shown = null;
    delete this.root.dataset.decisionId;
    fill(this.body);
  }
}
