// The Logs page (`#/logs?service=..&level=..&trace=..`): LogHub's lines of the whole mesh
// (trademesh.logs.v1.Logs/Tail on the tab's Mux stream). Filters by service, instance, minimum
// level, venue, trace id and text, all in the URL (logs/filters); following (the newest BACKLOG
// matching lines, then each new one live, resubscribed after a stream's end like every live
// panel) or a one-off look at the newest SNAPSHOT; pause keeps the new lines waiting, counted,
// until resume (logs/lines). Its stream runs only while the page is shown.
import { classify, isCanceled } from "../api/errors";
import type { LiveStreams } from "../api/live";
import { type TailInit, tailLogs } from "../api/logs";
import { Backoff } from "../lib/backoff";
import { follow, type LoopContext } from "../lib/loop";
import { h, panel } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import { LEVELS, type LogFilters, logsHash, parseFilters, tailRequest } from "./filters";
import { KEEP, LogLines } from "./lines";

// A live tail starts from this many of the newest matching lines.
const BACKLOG = 200;
// A look without following shows this many (the most Tail gives).
const SNAPSHOT = 1000;
const TEXT_FILTERS = ["service", "instance", "venue", "trace", "text"] as const;

export class LogsPage {
  readonly root: HTMLElement;
  private readonly status: HTMLElement;
  private readonly lines: LogLines;
  private readonly inputs: Record<(typeof TEXT_FILTERS)[number], HTMLInputElement>;
  private readonly level: HTMLSelectElement;
  private readonly following: HTMLInputElement;
  private readonly pauseButton = h("button", { id: "logs-pause", type: "button", "aria-pressed": "false" }, "Pause");
  private readonly count = h("span", { id: "logs-count", class: "who" });
  private readonly waiting = h("span", { id: "logs-waiting", class: "log-waiting", hidden: true });
  private query: string | null = null;

  constructor(
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    this.lines = new LogLines(() => this.counts());
    const input = (name: string, placeholder: string): HTMLInputElement =>
      h("input", { id: `logs-${name}`, name, placeholder, size: 12, autocomplete: "off" });
    this.inputs = {
      service: input("service", "service"),
      instance: input("instance", "instance"),
      venue: input("venue", "venue"),
      trace: input("trace", "trace id"),
      text: input("text", "text"),
    };
    this.inputs.trace.size = 34;
    this.level = h(
      "select",
      { id: "logs-level", name: "level" },
      h("option", { value: "" }, "every level"),
      ...LEVELS.map((level) => h("option", { value: level }, `${level.toLowerCase()} and above`)),
    );
    this.following = h("input", { id: "logs-follow", type: "checkbox", checked: true });
    const form = h(
      "form",
      { id: "logs-filters", class: "controls log-filters" },
      this.inputs.service,
      this.inputs.instance,
      this.level,
      this.inputs.venue,
      this.inputs.trace,
      this.inputs.text,
      h("button", { id: "logs-apply", type: "submit" }, "Apply"),
      h("a", { id: "logs-clear", href: logsHash({}) }, "clear filters"),
      h("label", { class: "log-follow" }, this.following, "follow"),
      this.pauseButton,
      this.waiting,
      this.count,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.apply();
    });
    // The level and follow apply at once, the text fields on Enter or Apply only: applied on leaving
    // a field, the URL's change could land while the next one is typed in, and overwrite it.
    this.level.addEventListener("change", () => this.apply());
    this.following.addEventListener("change", () => this.apply());
    this.pauseButton.addEventListener("click", () => this.togglePause());
    const body = panel("Logs", "logs", form, this.lines.root);
    this.status = body.status;
    this.root = h("main", { id: "logs-page", class: "page", hidden: true }, body.root);
    this.counts();
  }

  /** Shows the page with the filters of `query` (the hash after "?"), tailing them. */
  show(query: string): void {
    if (this.loops.signal !== undefined && query === this.query) return;
    this.query = query;
    const filters = parseFilters(query);
    this.fillForm(filters);
    this.start(filters);
  }

  /** Stops the page's stream (another page is shown). */
  hide(): void {
    this.loops.stop();
  }

  /** The form's filters into the URL (which shows them: see show()). */
  private apply(): void {
    const filters: Partial<LogFilters> = { level: this.level.value, follow: this.following.checked };
    for (const key of TEXT_FILTERS) filters[key] = this.inputs[key].value.trim();
    const hash = logsHash(filters);
    if (window.location.hash !== hash) window.location.hash = hash;
  }

  private fillForm(filters: LogFilters): void {
    for (const key of TEXT_FILTERS) this.inputs[key].value = filters[key];
    this.level.value = filters.level;
    this.following.checked = filters.follow;
  }

  private start(filters: LogFilters): void {
    const signal = this.loops.restart();
    this.lines.clear();
    const ctx = this.loops.context(signal, this.status);
    if (filters.follow) {
      // A tail that reconnects resumes after the last line it showed (after_id): nothing the
      // stream still holds is missed or shown twice; the stream says when lines were trimmed.
      let lastId = "";
      const request = (): TailInit =>
        lastId === "" ? tailRequest(filters, BACKLOG) : { ...tailRequest(filters, 0), afterId: lastId };
      void follow(
        ctx,
        (signal, opened) => tailLogs(this.live, request(), signal, opened),
        (batch) => {
          if (signal.aborted) return;
          if (batch.trimmed) ctx.onStatus({ tone: "warn", text: "lines were lost while disconnected (trimmed)" });
          this.lines.add(batch.lines);
          if (batch.lines.length > 0) lastId = batch.lines[batch.lines.length - 1].id;
        },
      );
    } else void this.look(ctx, filters);
  }

  /** One Tail without follow: the newest SNAPSHOT lines, tried again until it answers. */
  private async look(ctx: LoopContext, filters: LogFilters): Promise<void> {
    const backoff = new Backoff();
    while (!ctx.signal.aborted) {
      try {
        const opened = (): void => ctx.connection.up();
        for await (const batch of tailLogs(this.live, tailRequest(filters, SNAPSHOT), ctx.signal, opened)) {
          if (!ctx.signal.aborted) this.lines.add(batch.lines);
        }
        ctx.onStatus({ tone: "ok", text: "not following: the newest lines when asked" });
        return;
      } catch (error) {
        if (ctx.signal.aborted || isCanceled(error)) return;
        const delayMs = backoff.next();
        const failure = classify(error);
        if (failure.kind === "unreachable") ctx.connection.down(failure.message, delayMs);
        ctx.onStatus({ tone: "error", text: `${failure.message}; retrying in ${Math.ceil(delayMs / 1000)} s` });
        await ctx.connection.sleep(delayMs, ctx.signal);
      }
    }
  }

  private togglePause(): void {
    if (this.lines.isPaused) this.lines.resume();
    else this.lines.pause();
  }

  private counts(): void {
    const paused = this.lines.isPaused;
    this.pauseButton.textContent = paused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(paused));
    this.count.textContent = `${this.lines.count} lines shown (the newest ${KEEP} kept)`;
    this.waiting.hidden = !paused;
    const waiting = this.lines.waitingCount;
    const dropped = this.lines.droppedCount;
    this.waiting.dataset.waiting = String(waiting);
    this.waiting.textContent =
      `paused: ${waiting} new line${waiting === 1 ? "" : "s"} waiting` + (dropped > 0 ? ` (${dropped} older dropped)` : "");
  }
}
