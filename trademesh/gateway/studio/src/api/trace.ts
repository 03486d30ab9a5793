// W3C trace context for Studio's commands: each command is a trace of its own, its id sent as
// `traceparent` (the gateway passes it on; every service's log lines of the call carry it,
// and the inspector passes it on to the venue), so the page can link to its log lines.

function hex(bytes: number): string {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A new trace id: 32 lowercase hex digits. */
export function newTraceId(): string {
  return hex(16);
}

/** The `traceparent` header of a call in trace `traceId` (a new span, sampled). */
export function traceHeaders(traceId: string): Record<string, string> {
  return { traceparent: `00-${traceId}-${hex(8)}-01` };
}
