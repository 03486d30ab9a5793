// Display formatting of counters and times; money is shown as the venue sent it.

const NS_PER_MS = 1_000_000n;

// What Date.toLocaleTimeString([], { hour12: false }) formats with, made once: that call builds a
// formatter each time (the tape's rows, many a second, spent most of their time there).
const CLOCK = new Intl.DateTimeFormat([], { hour: "numeric", minute: "numeric", second: "numeric", hour12: false });

/** hh:mm:ss.mmm (local time) of a nanosecond timestamp. */
export function clockTime(tsNs: bigint): string {
  const date = new Date(Number(tsNs / NS_PER_MS));
  const ms = String(date.getMilliseconds()).padStart(3, "0");
  return `${CLOCK.format(date)}.${ms}`;
}

/** A last-message age: "-" before the first, else ms, s or min. */
export function age(ms: bigint): string {
  if (ms < 0n) return "-";
  const value = Number(ms);
  if (value < 1000) return `${value} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  return `${(value / 60_000).toFixed(1)} min`;
}

export function rate(perSecond: number): string {
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1);
}

/** A generated enum's value as words: label(OrderStatus, 2) -> "partially filled". */
export function label(values: Record<number, string>, value: number): string {
  const name = values[value];
  return name === undefined ? String(value) : name.replaceAll("_", " ").toLowerCase();
}

/** A stage's or a request's duration: "850 µs", "12.3 ms", "1.50 s". */
export function duration(ns: bigint): string {
  const value = Number(ns);
  if (value < 1_000_000) return `${Math.round(value / 1000)} µs`;
  if (value < 1_000_000_000) return `${(value / 1_000_000).toFixed(1)} ms`;
  return `${(value / 1_000_000_000).toFixed(2)} s`;
}

/** A statistic that is a double on the wire (a Brier score, an ECE, a rate): 4 decimals. */
export function statistic(value: number): string {
  return Number.isFinite(value) ? value.toFixed(4) : "–";
}
