// The Logs page's lines: newest first, at most KEEP in the page (the oldest go), each line once
// (a line whose stream id is not after the newest taken is skipped: a resubscribed tail's backlog
// repeats what is shown, and only what was logged meanwhile is new). Paused, the new lines
// wait apart (at most KEEP: beyond that the oldest waiting ones are dropped, counted) and show on
// resume.
import { type LogLine, LogLevel } from "../gen/trademesh/logs/v1/logs_pb";
import { utcTime } from "../ledger/books";
import { h } from "../ui/dom";
import { logsHash } from "./filters";

export const KEEP = 2000;
const COLUMNS = ["time", "level", "service", "instance", "logger", "message", "fields"];

function levelName(level: LogLevel): string {
  return (LogLevel[level] ?? String(level)).toLowerCase();
}

/** A link to the Logs page filtered by trace id `id`. */
export function traceLink(id: string): HTMLAnchorElement {
  return h("a", { class: "log-trace", href: logsHash({ trace: id }), title: `log lines of trace ${id}` }, id);
}

function fieldsCell(line: LogLine): HTMLElement {
  const fields = { ...line.fields };
  if (line.traceId !== "") fields.trace_id = line.traceId;
  const items = Object.keys(fields)
    .sort()
    .map((key) =>
      h(
        "span",
        { class: "log-field", "data-field": key },
        `${key}=`,
        key === "trace_id" ? traceLink(fields[key] ?? "") : (fields[key] ?? ""),
      ),
    );
  return h("td", { "data-col": "fields" }, ...items);
}

function row(line: LogLine): HTMLTableRowElement {
  const level = levelName(line.level);
  const message = h("td", { "data-col": "message", class: "log-message" }, line.message);
  if (line.exception !== "") message.append(h("pre", { class: "log-exception" }, line.exception));
  return h(
    "tr",
    { class: `log-line level-${level}`, "data-id": line.id, "data-level": level, title: line.process },
    h("td", { "data-col": "time", class: "who" }, utcTime(line.timeNs).slice(11)),
    h("td", { "data-col": "level", class: "log-level" }, level),
    h("td", { "data-col": "service" }, line.service),
    h("td", { "data-col": "instance" }, line.instance),
    h("td", { "data-col": "logger", class: "who" }, line.logger),
    message,
    fieldsCell(line),
  );
}

/** "1764200000000-3" as [1764200000000n, 3n]; null when not a stream id. */
function streamId(id: string): [bigint, bigint] | null {
  const match = /^(\d+)-(\d+)$/.exec(id);
  return match === null ? null : [BigInt(match[1] ?? "0"), BigInt(match[2] ?? "0")];
}

export class LogLines {
  readonly root: HTMLElement;
  private readonly body = h("tbody", { id: "log-lines" });
  // The newest stream id taken ("ms-seq" as [ms, seq]), null before the first line.
  private newest: [bigint, bigint] | null = null;
  private waiting: LogLine[] = [];
  private dropped = 0;
  private paused = false;

  /** `onChange` is told after every change of the lines shown or waiting. */
  constructor(private readonly onChange: () => void) {
    const head = h("thead", {}, h("tr", {}, ...COLUMNS.map((c) => h("th", {}, c))));
    this.root = h("div", { class: "log-scroll" }, h("table", { class: "log-table" }, head, this.body));
  }

  get count(): number {
    return this.body.rows.length;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  get droppedCount(): number {
    return this.dropped;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Forgets every line (the filters changed), and is no longer paused: the new filters' lines show. */
  clear(): void {
    this.body.replaceChildren();
    this.newest = null;
    this.waiting = [];
    this.dropped = 0;
    this.paused = false;
    this.onChange();
  }

  /** Takes a batch, oldest first: shown now, or kept waiting while paused. */
  add(lines: readonly LogLine[]): void {
    const fresh = lines.filter((line) => this.taken(line.id));
    if (fresh.length === 0) return;
    if (this.paused) this.hold(fresh);
    else this.show(fresh);
    this.onChange();
  }

  pause(): void {
    this.paused = true;
    this.onChange();
  }

  resume(): void {
    this.paused = false;
    const waiting = this.waiting;
    this.waiting = [];
    this.dropped = 0;
    if (waiting.length > 0) this.show(waiting);
    this.onChange();
  }

  private hold(lines: LogLine[]): void {
    this.waiting.push(...lines);
    const over = this.waiting.length - KEEP;
    if (over <= 0) return;
    this.waiting.splice(0, over);
    this.dropped += over;
  }

  private show(lines: LogLine[]): void {
    this.body.prepend(...lines.slice(-KEEP).reverse().map(row));
    while (this.body.rows.length > KEEP) this.body.lastElementChild?.remove();
  }

  /** True for an id after the newest taken (which it becomes). */
  private taken(id: string): boolean {
    const position = streamId(id);
    if (position === null) return true; // not a stream id: never expected, shown rather than lost
    const newest = this.newest;
    if (newest !== null && (position[0] < newest[0] || (position[0] === newest[0] && position[1] <= newest[1]))) {
      return false;
    }
    this.newest = position;
    return true;
  }
}
