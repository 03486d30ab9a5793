// The running run's progress (WatchProgress): a bar of the range done, the data time reached,
// events so far and per second, the ETA; the status once it ends, and why when it FAILED; a
// Cancel button while it runs. The run, its status and fraction are data attributes of
// #backtest-progress, so tests can follow it.
import { type Progress, RunStatus } from "../gen/trademesh/backtest/v1/backtest_pb";
import { rate } from "../lib/format";
import { h } from "../ui/dom";
import { ended, eta, statusName, utcSeconds } from "./figures";

export class ProgressView {
  readonly root: HTMLElement;
  readonly cancelButton = h(
    "button",
    { id: "backtest-cancel", type: "button", class: "danger", disabled: true },
    "Cancel",
  );
  private readonly bar = h("progress", { id: "backtest-progress-bar", max: 1, value: 0 });
  private readonly badge = h("span", { id: "backtest-status", class: "badge" }, "no run");
  private readonly run = h("code", { id: "backtest-progress-run" });
  private readonly line = h("p", { id: "backtest-progress-text", class: "who" });
  private readonly error = h("p", { id: "backtest-error", class: "error", hidden: true });
  private current = "";
  private status = RunStatus.UNSPECIFIED;

  constructor(onCancel: (runId: string) => void) {
    this.cancelButton.addEventListener("click", () => {
      if (this.current !== "") onCancel(this.current);
    });
    this.root = h(
      "div",
      { id: "backtest-progress", class: "backtest-progress", "data-run-id": "", "data-status": "" },
      h("div", { class: "progress-head" }, this.badge, this.run, this.cancelButton),
      this.bar,
      this.line,
      this.error,
    );
  }

  /** The run followed ("" when none). */
  get runId(): string {
    return this.current;
  }

  /** True while the run followed has not ended. */
  get running(): boolean {
    return this.current !== "" && !ended(this.status);
  }

  /** Follows `runId` from its start (nothing known of it yet). */
  follow(runId: string): void {
    this.current = runId;
    this.status = RunStatus.RUNNING;
    this.root.dataset.runId = runId;
    this.run.textContent = runId;
    this.bar.value = 0;
    this.line.textContent = "starting…";
    this.error.hidden = true;
    this.error.textContent = "";
    this.mark(RunStatus.RUNNING, 0);
  }

  /** One progress message of the run followed. */
  update(progress: Progress): void {
    if (progress.runId !== "" && progress.runId !== this.current) return;
    this.status = progress.status;
    const fraction = Math.min(1, Math.max(0, progress.fraction));
    this.bar.value = progress.status === RunStatus.DONE ? 1 : fraction;
    const parts = [
      `${(this.bar.value * 100).toFixed(1)}%`,
      `data time ${utcSeconds(progress.dataNs)}`,
      `${progress.events.toLocaleString()} events`,
      `${rate(progress.eventsPerS)} events/s`,
    ];
    if (!ended(progress.status)) parts.push(`ETA ${eta(progress.etaS)}`);
    this.line.textContent = parts.join(" · ");
    this.root.dataset.events = String(progress.events);
    this.root.dataset.dataNs = String(progress.dataNs);
    const failed = progress.status === RunStatus.FAILED;
    this.error.hidden = !failed;
    this.error.textContent = failed ? progress.error || "the run failed" : "";
    this.mark(progress.status, this.bar.value);
  }

  /** The watch failed for good (the run is not known): shown as the error. */
  lost(message: string): void {
    this.error.hidden = false;
    this.error.textContent = message;
  }

  private mark(status: RunStatus, fraction: number): void {
    const name = statusName(status);
    this.root.dataset.status = name;
    this.root.dataset.fraction = fraction.toFixed(4);
    this.badge.textContent = name || "no run";
    this.badge.className = `badge run-${name}`;
    this.cancelButton.disabled = ended(status) || this.current === "";
  }
}
