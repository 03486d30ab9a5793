// A decision's stage 6 for people: where the synthesis came from (the LLM, or the deterministic
// synthesis and why), its reasoning, the model that answered and what it said (the numbers a
// hallucination flag names marked in its text), the hallucination flags themselves (set apart in
// the page's warning style), the tools it called and the transport's events in order.
import { inventedNumbers } from "../advisor/stages";
import {
  AnswerUse,
  type Decision,
  HallucinationKind,
  type HallucinationFlag,
  type LlmTrace,
  SynthesisSource,
  TelemetryEventKind,
} from "../gen/trademesh/advisor/v1/messages_pb";
import { Direction } from "../gen/trademesh/signal/v1/signal_pb";
import { duration, label } from "../lib/format";
import { h, table } from "./dom";

const NUMBER = /-?\d+(?:\.\d+)?/g;

/** `text` with each number in `marked` wrapped in <mark class="hallucinated">. */
export function markNumbers(text: string, marked: readonly string[]): (Node | string)[] {
  if (marked.length === 0) return [text];
  const parts: (Node | string)[] = [];
  let last = 0;
  for (const match of text.matchAll(NUMBER)) {
    if (!marked.includes(match[0])) continue;
    parts.push(text.slice(last, match.index), h("mark", { class: "hallucinated" }, match[0]));
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

/** The answer's reasoning when its content is a JSON object with one; else the content itself. */
function answerReasoning(content: string): string {
  try {
    const parsed: unknown = JSON.parse(content);
    if (parsed !== null && typeof parsed === "object" && "reasoning" in parsed) {
      const reasoning = (parsed as { reasoning: unknown }).reasoning;
      if (typeof reasoning === "string") return reasoning;
    }
  } catch {
    // not JSON: the invalid-json flag says so; the content is shown as it came
  }
  return content;
}

function flagList(flags: readonly HallucinationFlag[]): HTMLElement {
  if (flags.length === 0) {
    return h("p", { id: "hallucination-flags", class: "empty", "data-flags": 0 }, "no hallucination flags");
  }
  const items = flags.map((flag) => {
    const kind = label(HallucinationKind, flag.kind);
    const field = flag.field === "" ? "" : ` (${flag.field})`;
    return h(
      "li",
      { class: "flag", "data-kind": kind.replaceAll(" ", "_"), "data-field": flag.field },
      h("strong", {}, `⚠ ${kind}`),
      `${field}: ${flag.detail}`,
    );
  });
  return h("ul", { id: "hallucination-flags", class: "flags", "data-flags": flags.length, role: "alert" }, ...items);
}

function answer(trace: LlmTrace, marked: readonly string[]): HTMLElement {
  if (trace.content === "") {
    const why = trace.failure === "" ? "no answer" : `no answer: ${trace.failure}`;
    return h("p", { id: "llm-answer", class: "empty" }, why);
  }
  return h(
    "div",
    { id: "llm-answer" },
    h("blockquote", { class: "reasoning" }, ...markNumbers(answerReasoning(trace.content), marked)),
    h("details", {}, h("summary", {}, "the answer as it came"), h("pre", { id: "llm-content" }, trace.content)),
  );
}

function toolCalls(trace: LlmTrace): HTMLElement {
  if (trace.toolCalls.length === 0) return h("p", { id: "llm-tools", class: "empty" }, "no tool calls");
  const rows = trace.toolCalls.map((call) =>
    h(
      "tr",
      { "data-tool": call.name, "data-ok": String(call.ok) },
      h("td", {}, call.name),
      h("td", { class: "code" }, call.argumentsJson),
      h("td", { class: "num" }, String(call.resultChars)),
      h("td", { class: call.ok ? "" : "error" }, call.ok ? "ok" : call.error),
    ),
  );
  const body = h("tbody", {}, ...rows);
  return h("div", { id: "llm-tools" }, table(["tool", "arguments", "result chars", "result"], body));
}

function events(trace: LlmTrace): HTMLElement {
  const items = trace.events.map((event) => {
    const latency = event.latencyNs > 0n ? ` · ${duration(event.latencyNs)}` : "";
    const model = event.model === "" ? "" : ` ${event.model}`;
    const detail = event.detail === "" ? "" : `: ${event.detail}`;
    return h(
      "li",
      { "data-kind": label(TelemetryEventKind, event.kind) },
      `+${duration(event.offsetNs)} ${label(TelemetryEventKind, event.kind)}${model}${latency}${detail}`,
    );
  });
  return h("ol", { id: "llm-events", class: "events" }, ...items);
}

function facts(decision: Decision, trace: LlmTrace | undefined): HTMLElement {
  const fact = (name: string, value: string): HTMLElement =>
    h("span", { "data-fact": name }, h("span", { class: "muted" }, `${name} `), value || "–");
  const synthesis = decision.synthesis;
  return h(
    "p",
    { class: "facts" },
    fact("model", trace?.model ?? ""),
    fact("configured", trace?.models.join(", ") ?? ""),
    fact("answer", label(AnswerUse, trace?.answerUse ?? AnswerUse.UNSPECIFIED)),
    fact("requests", String(trace?.attempts ?? 0)),
    fact("latency", trace === undefined || trace.latencyNs === 0n ? "" : duration(trace.latencyNs)),
    fact("tokens", trace === undefined ? "" : `${trace.promptTokens} + ${trace.completionTokens}`),
    fact("bias", synthesis === undefined ? "" : label(Direction, synthesis.bias)),
    fact("confidence", synthesis?.confidence ?? ""),
    fact("size ×", synthesis?.sizeMultiplier ?? ""),
  );
}

/** The synthesis and the LLM's trace of `decision`; `fallback` is stage 6's reason for degrading. */
export function llmTrace(decision: Decision, fallback: string): HTMLElement {
  const synthesis = decision.synthesis;
  const source = synthesis === undefined ? "not run" : label(SynthesisSource, synthesis.source);
  const deterministic = decision.deterministicSynthesis;
  const why = `deterministic synthesis${fallback === "" ? "" : `: ${fallback}`}`;
  const marker = deterministic ? h("p", { id: "llm-fallback", class: "fallback" }, why) : null;
  const trace = decision.llm;
  if (synthesis === undefined && trace === undefined) {
    return h(
      "section",
      { id: "llm-trace", class: "llm-trace", "data-source": source, "data-deterministic": "false" },
      h("h3", {}, "LLM synthesis", h("span", { id: "synthesis-source", class: "badge" }, source)),
      h("p", { class: "empty" }, "not run: an earlier stage blocked the signal, or it was flat"),
      flagList(decision.hallucinationFlags),
    );
  }
  const section = h(
    "section",
    { id: "llm-trace", class: "llm-trace", "data-source": source, "data-deterministic": String(deterministic) },
    h("h3", {}, "LLM synthesis", h("span", { id: "synthesis-source", class: "badge" }, source)),
    marker,
    h("p", { id: "synthesis-reasoning", class: "reasoning" }, synthesis?.reasoning || "–"),
    facts(decision, trace),
    flagList(decision.hallucinationFlags),
  );
  if (trace !== undefined) {
    section.append(
      h("h4", {}, "The model's answer"),
      answer(trace, inventedNumbers(decision.hallucinationFlags)),
      h("h4", {}, "Tool calls"),
      toolCalls(trace),
      h("details", {}, h("summary", {}, `Transport events (${trace.events.length})`), events(trace)),
    );
  }
  return section;
}
