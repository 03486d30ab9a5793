// A decision's parts as people read them: the 8 stages' names, a stage's output (a JSON object
// on the wire) as rows of key and value, and the numbers a hallucination flag says the LLM made up.
// Values stay as they came: decimal strings are shown as written, never re-rounded.
import { HallucinationKind, type HallucinationFlag, Stage } from "../gen/trademesh/advisor/v1/messages_pb";

const STAGE_NAMES: Record<Stage, string> = {
  [Stage.UNSPECIFIED]: "unknown",
  [Stage.CONTEXT]: "context",
  [Stage.MARKET_QUALITY]: "quality gate",
  [Stage.EVALUATION]: "evaluation",
  [Stage.CONVICTION]: "conviction",
  [Stage.CALIBRATION]: "calibration",
  [Stage.SYNTHESIS]: "LLM synthesis",
  [Stage.VALIDATION]: "validation",
  [Stage.INTENT]: "intent",
};
// A value longer than this is cut in its row; the whole is its tooltip.
const LONGEST_VALUE = 96;

export function stageName(stage: Stage): string {
  return STAGE_NAMES[stage] ?? String(stage);
}

/** The stage's key for data attributes and CSS: "quality-gate", "llm-synthesis". */
export function stageKey(stage: Stage): string {
  return stageName(stage).toLowerCase().replaceAll(" ", "-");
}

export interface OutputRow {
  key: string;
  text: string;
  full: string;
}

function valueText(value: unknown): string {
  if (value === null || value === undefined) return "–";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return JSON.stringify(value);
}

function row(key: string, value: unknown): OutputRow {
  const full = valueText(value);
  const text = full.length > LONGEST_VALUE ? `${full.slice(0, LONGEST_VALUE - 1)}…` : full;
  return { key, text, full };
}

/** A stage's output JSON as rows, one per top-level field ([] when the stage did not run). */
export function outputRows(outputJson: string): OutputRow[] {
  if (outputJson === "") return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(outputJson);
  } catch {
    return [row("output", outputJson)];
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return [row("output", parsed)];
  return Object.entries(parsed).map(([key, value]) => row(key, value));
}

/** One field of a stage's output JSON, as text ("" when absent): e.g. the synthesis' final_conviction. */
export function outputField(outputJson: string, field: string): string {
  const found = outputRows(outputJson).find((r) => r.key === field);
  return found === undefined || found.full === "–" ? "" : found.full;
}

/** The numbers the invented-number flags name ("97.31 appears nowhere in the context" -> 97.31). */
export function inventedNumbers(flags: readonly HallucinationFlag[]): string[] {
  return flags
    .filter((f) => f.kind === HallucinationKind.INVENTED_NUMBER)
    .map((f) => /^-?\d+(?:\.\d+)?/.exec(f.detail)?.[0] ?? "")
    .filter((n) => n !== "");
}
