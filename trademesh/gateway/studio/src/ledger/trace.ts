// The trace view: a dialog showing the chain of any id of the trading flow (the ledger's Trace),
// signal first: signal → decision → intent → risk check → order → fill → transfer, each step
// with its time (and the time since the step before), its summary and its key fields. A
// liquidation's steps (the venue's liquidation order, its fills, the fee's transfer:
// ledger/liquidation) carry the "liquidation" badge, and the dialog data-liquidation="true".
//
// Any page opens it: an element carrying `data-trace-id` (traceButton() makes one) opens the
// trace of that id when clicked, through one click listener on the document; openTrace(id) opens
// it from code. installTrace() puts the dialog in place for the session (app.ts). Its "log lines"
// link opens the Logs page on the lines that name the id (the services log ids in their messages).
import type { Clients } from "../api/clients";
import { classify } from "../api/errors";
import { trace } from "../api/ledger";
import type { TraceResponse, TraceStep } from "../gen/trademesh/ledger/v1/ledger_pb";
import { duration } from "../lib/format";
import { logsHash } from "../logs/filters";
import { fill, h, showStatus } from "../ui/dom";
import { liquidationBadge } from "../ui/margin";
import { CHAIN, stepName, utcTime } from "./books";
import { liquidationSteps } from "./liquidation";

class TraceView {
  readonly root: HTMLDialogElement;
  private readonly title = h("h3", { id: "trace-title" }, "Trace");
  private readonly status = h("span", { id: "trace-status", class: "status", "data-tone": "ok" });
  private readonly chain = h("ol", { id: "trace-chain", class: "chain" });
  private readonly steps = h("ol", { id: "trace-steps", class: "trace-steps" });
  private readonly logs = h("a", { id: "trace-logs", href: logsHash({}) }, "log lines");
  private fetching: AbortController | null = null;

  constructor(
    private readonly clients: Clients,
    private readonly appSignal: AbortSignal,
  ) {
    const close = h("button", { id: "trace-close", type: "button" }, "Close");
    close.addEventListener("click", () => this.root.close());
    this.logs.addEventListener("click", () => this.root.close());
    this.root = h(
      "dialog",
      { id: "trace-view", class: "trace" },
      h("header", {}, this.title, this.status, this.logs, close),
      this.chain,
      this.steps,
    );
    this.root.addEventListener("close", () => {
      this.fetching?.abort();
      this.fetching = null;
    });
  }

  /** Shows the trace of `id`, fetched now (a trace already open is replaced). */
  open(id: string): void {
    this.fetching?.abort();
    const controller = new AbortController();
    this.fetching = controller;
    const stop = (): void => controller.abort();
    this.appSignal.addEventListener("abort", stop, { once: true });
    this.root.dataset.traced = id;
    delete this.root.dataset.kind;
    delete this.root.dataset.liquidation;
    this.root.dataset.steps = "0";
    this.title.textContent = `Trace of ${id}`;
    this.logs.href = logsHash({ text: id });
    this.logs.title = `the log lines naming ${id}`;
    fill(this.chain);
    fill(this.steps);
    showStatus(this.status, { tone: "ok", text: "loading…" });
    if (!this.root.open) this.root.showModal();
    trace(this.clients, id, controller.signal)
      .then((reply) => {
        if (!controller.signal.aborted) this.draw(reply);
      })
      .catch((error: unknown) => {
        if (!controller.signal.aborted) showStatus(this.status, { tone: "error", text: classify(error).message });
      })
      .finally(() => this.appSignal.removeEventListener("abort", stop));
  }

  close(): void {
    if (this.root.open) this.root.close();
  }

  private draw(reply: TraceResponse): void {
    this.root.dataset.kind = reply.kind;
    this.root.dataset.steps = String(reply.steps.length);
    const liquidation = liquidationSteps(reply.steps);
    this.root.dataset.liquidation = String(liquidation.size > 0);
    this.title.textContent = `Trace of ${reply.kind === "" ? "" : `${stepName(reply.kind)} `}${reply.id}`;
    const kinds = new Set(reply.steps.map((step) => step.kind));
    fill(
      this.chain,
      ...CHAIN.map((kind) =>
        h("li", { "data-kind": kind, class: kinds.has(kind) ? "present" : "absent" }, h("span", {}, stepName(kind))),
      ),
    );
    fill(
      this.steps,
      ...reply.steps.map((step, index) => this.step(step, reply.steps[index - 1], reply.id, liquidation.has(step.id))),
    );
    this.linkLogs(reply);
    const count = reply.steps.length;
    showStatus(this.status, { tone: "ok", text: `${count} step${count === 1 ? "" : "s"}` });
  }

  /** A chain with a signal was logged under the signal's trace id (its UUID's 32 hex digits:
   * trademesh.core.platform.logs.setup.chain_trace_id): the link opens its lines from the detector to the
   * venue. Without one, the lines naming the id asked about. */
  private linkLogs(reply: TraceResponse): void {
    const signal = reply.steps.find((step) => step.kind === "signal");
    const traceId = signal === undefined ? null : uuidHex(signal.id);
    if (signal === undefined || traceId === null) return;
    this.logs.href = logsHash({ trace: traceId });
    this.logs.title = `the log lines of signal ${signal.id}'s chain (trace ${traceId})`;
  }

  private step(step: TraceStep, before: TraceStep | undefined, asked: string, liquidation: boolean): HTMLElement {
    const since =
      before !== undefined && before.tsNs > 0n && step.tsNs >= before.tsNs ? `+${duration(step.tsNs - before.tsNs)}` : "";
    const fields = step.fields.map((f) =>
      h("tr", { "data-field": f.name }, h("th", {}, f.name), h("td", { class: "code" }, f.value)),
    );
    return h(
      "li",
      {
        class: `trace-step kind-${step.kind}${liquidation ? " liquidation" : ""}`,
        "data-kind": step.kind,
        "data-liquidation": String(liquidation),
        "data-step-id": step.id,
        "aria-current": step.id === asked ? "true" : undefined,
      },
      h(
        "div",
        { class: "step-head" },
        h("strong", {}, stepName(step.kind)),
        liquidation ? liquidationBadge() : null,
        h("span", { class: "who", "data-col": "time" }, utcTime(step.tsNs)),
        h("span", { class: "who", "data-col": "since" }, since),
        h("span", { class: "summary" }, step.summary),
      ),
      h("div", { class: "who code", "data-col": "id" }, step.id),
      fields.length > 0 ? h("table", { class: "output" }, h("tbody", {}, ...fields)) : null,
    );
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A UUID's 32 hex digits (lower case), null for anything else. */
function uuidHex(id: string): string | null {
  return UUID.test(id) ? id.replaceAll("-", "").toLowerCase() : null;
}

let view: TraceView | null = null;

/** Puts the trace dialog in place for the session: until `signal` aborts (logout), any element
 * with `data-trace-id` opens the trace of its id when clicked. */
export function installTrace(clients: Clients, signal: AbortSignal): void {
  const installed = new TraceView(clients, signal);
  view = installed;
  document.body.append(installed.root);
  document.addEventListener(
    "click",
    (event) => {
      const target = event.target instanceof Element ? event.target.closest<HTMLElement>("[data-trace-id]") : null;
      if (target === null) return;
      const id = target.dataset.traceId ?? "";
      if (id === "") return;
      event.preventDefault();
      installed.open(id);
    },
    { signal },
  );
  signal.addEventListener(
    "abort",
    () => {
      installed.close();
      installed.root.remove();
      if (view === installed) view = null;
    },
    { once: true },
  );
}

/** Opens the trace of `id` (a signal, decision, intent, order, client order, fill or transfer id). */
export function openTrace(id: string): void {
  view?.open(id);
}

/** A small button opening the trace of `id`; null when there is no id to trace. */
export function traceButton(id: string, what = "the chain"): HTMLElement | null {
  if (id === "") return null;
  return h(
    "button",
    { type: "button", class: "trace-link", "data-trace-id": id, title: `Trace ${what}: ${id}` },
    "trace",
  );
}
