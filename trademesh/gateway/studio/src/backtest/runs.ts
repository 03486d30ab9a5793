// The runs list of the Backtest page (ListRuns, newest first): a row per run with its status,
// strategies, range and the account's figures once done (total return, Sharpe, max drawdown,
// trades). A click on a row opens the run (its progress while it runs, its result once done);
// each row's box picks it for the comparison, two at a time (a third pick drops the oldest).
import { type RunSummary, RunStatus } from "../gen/trademesh/backtest/v1/backtest_pb";
import { fill, h, table } from "../ui/dom";
import { barsText } from "./bars";
import { percent, rangeText, ratio, statusName, tone, utcSeconds } from "./figures";

const COLUMNS = ["", "created", "strategies", "status", "range", "total return", "Sharpe", "max drawdown", "trades"];
const PICKS = 2;

export class RunList {
  readonly root: HTMLElement;
  readonly compareButton = h("button", { id: "backtest-compare", type: "button", disabled: true }, "Compare");
  private readonly body = h("tbody", { id: "backtest-runs", "data-count": 0 });
  private readonly picked: string[] = [];
  private known: RunSummary[] = [];
  private open = "";

  constructor(
    private readonly onOpen: (run: RunSummary) => void,
    onCompare: (runIds: readonly string[]) => void,
  ) {
    this.compareButton.addEventListener("click", () => onCompare([...this.picked]));
    this.root = h(
      "div",
      { class: "runs" },
      h("p", { class: "who" }, "Click a run for its result; tick two to compare them. ", this.compareButton),
      h("div", { class: "scroll" }, table(COLUMNS, this.body)),
    );
    this.draw();
  }

  get runs(): readonly RunSummary[] {
    return this.known;
  }

  /** The runs listed now (a poll's answer). */
  show(runs: readonly RunSummary[]): void {
    this.known = [...runs];
    const ids = new Set(runs.map((r) => r.runId));
    for (let i = this.picked.length - 1; i >= 0; i -= 1) if (!ids.has(this.picked[i]!)) this.picked.splice(i, 1);
    this.draw();
  }

  /** Marks the run shown below the list. */
  opened(runId: string): void {
    this.open = runId;
    for (const row of this.body.querySelectorAll<HTMLElement>("tr[data-run-id]")) {
      row.classList.toggle("open", row.dataset.runId === runId);
    }
  }

  /** Picks exactly these runs for the comparison. */
  pick(runIds: readonly string[]): void {
    this.picked.splice(0, this.picked.length, ...runIds.slice(-PICKS));
    this.draw();
  }

  private toggle(runId: string, on: boolean): void {
    const at = this.picked.indexOf(runId);
    if (on && at < 0) this.picked.push(runId);
    if (!on && at >= 0) this.picked.splice(at, 1);
    while (this.picked.length > PICKS) this.picked.shift();
    this.draw();
  }

  private row(run: RunSummary): HTMLElement {
    const total = run.total;
    const done = run.status === RunStatus.DONE && total !== undefined;
    const box = h("input", {
      type: "checkbox",
      class: "compare-pick",
      "aria-label": `compare run ${run.runId}`,
      checked: this.picked.includes(run.runId),
      disabled: run.status !== RunStatus.DONE,
    });
    box.addEventListener("click", (event) => event.stopPropagation());
    box.addEventListener("change", () => this.toggle(run.runId, box.checked));
    const status = statusName(run.status);
    const row = h(
      "tr",
      {
        class: `run ${run.runId === this.open ? "open" : ""}`.trim(),
        "data-run-id": run.runId,
        "data-status": status,
        title: run.error || `run ${run.runId}`,
      },
      h("td", {}, box),
      // The time alone (the date in its title): the list stays narrow enough for its figures.
      h("td", { title: utcSeconds(run.createdNs) }, utcSeconds(run.createdNs).slice(11, 19)),
      h(
        "td",
        { "data-col": "strategies", "data-bars": run.options?.bars ?? "" },
        [run.options?.strategies.join(", ") ?? "", barsText(run.options?.bars ?? "")].filter(Boolean).join(" · "),
      ),
      h("td", { "data-col": "status" }, h("span", { class: `badge run-${status}` }, status)),
      h("td", {}, rangeText(run.options)),
      h(
        "td",
        { class: `num ${done ? tone(total.totalReturn) : ""}`.trim(), "data-col": "total_return" },
        done ? percent(total.totalReturn) : "–",
      ),
      h("td", { class: "num", "data-col": "sharpe" }, done ? ratio(total.sharpe) : "–"),
      h("td", { class: "num", "data-col": "max_drawdown" }, done ? percent(total.maxDrawdown) : "–"),
      h("td", { class: "num", "data-col": "trades" }, done ? String(total.trades) : "–"),
    );
    row.addEventListener("click", () => this.onOpen(run));
    return row;
  }

  private draw(): void {
    this.body.dataset.count = String(this.known.length);
    this.compareButton.disabled = this.picked.length !== PICKS;
    this.compareButton.dataset.picked = this.picked.join(",");
    if (this.known.length === 0) {
      fill(this.body, h("tr", { class: "empty" }, h("td", { colspan: COLUMNS.length }, "no runs yet")));
    } else fill(this.body, ...this.known.map((run) => this.row(run)));
  }
}
