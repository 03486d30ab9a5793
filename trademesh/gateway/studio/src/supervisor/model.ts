// The Supervisor as data (docs/supervisor.md): its modes and actions as words, what a proposal
// asks for, how its evidence reads, and the audit trail as the page keeps it (the stream's first
// message holds the recent entries, then one message per entry; a reconnect sends the recent
// ones again, so the trail starts over from each first message).
import { ActionKind, type AuditEntry, type Evidence, Mode, type Proposal } from "../gen/trademesh/supervisor/v1/supervisor_pb";
import { amountText } from "../lib/money";
import { policyValue } from "../risk/gauges";

/** The modes an operator chooses from, with what each means. */
export const MODES: readonly { mode: Mode; word: string; meaning: string }[] = [
  { mode: Mode.OFF, word: "off", meaning: "observes and audits; proposes nothing" },
  { mode: Mode.PROPOSE, word: "propose", meaning: "each checked proposal waits for an operator" },
  { mode: Mode.ACT, word: "act", meaning: "each checked proposal is carried out at once, within the bounds" },
];

const ACTIONS: Record<number, string> = {
  [ActionKind.PAUSE]: "pause",
  [ActionKind.RESUME]: "resume",
  [ActionKind.SET_CAPITAL]: "set capital",
  [ActionKind.TIGHTEN_POLICY]: "tighten policy",
};

// Evidence that is a fraction (drawdown, hit rate) reads as a percentage; money (PnL, capital)
// rounded to the cent (lib/money); a policy's limit and floor as the Risk page shows that
// policy's (risk/gauges); the rest as the supervisor sent it. The exact text stays on hover.
const FRACTIONS = new Set(["drawdown", "hit_rate"]);
const MONEY = new Set(["realised_pnl", "capital"]);
const POLICY_LIMITS = new Set(["limit", "floor"]);
const KEEP = 500; // audit entries shown: the supervisor keeps 1000, a look makes one every --every-s

/** "off", "propose", "act" ("unknown" before the first state). */
export function modeWord(mode: Mode): string {
  return MODES.find((m) => m.mode === mode)?.word ?? "unknown";
}

/** "pause", "resume", "set capital", "tighten policy". */
export function actionWord(kind: ActionKind): string {
  return ACTIONS[kind] ?? "unknown";
}

/** What the proposal acts on: the strategy, or the policy for a tightening. */
export function target(p: Proposal): string {
  return p.kind === ActionKind.TIGHTEN_POLICY ? p.policy : p.strategy;
}

/** A fraction as a percentage for reading only ("0.0421" -> "4.21%"); the text itself when not
 * a number (an empty figure: "–"). */
export function percent(text: string): string {
  if (text === "") return "–";
  const value = Number(text);
  return Number.isFinite(value) ? `${(value * 100).toFixed(2)}%` : text;
}

/** A proposal's value: a capital rounded to the cent, or a policy's new limit as the Risk page
 * shows that policy's ("4.0%", "25,000.00"); "–" when none. */
export function valueText(p: Proposal): string {
  if (p.value === "") return "–";
  if (p.kind === ActionKind.SET_CAPITAL) return amountText(p.value);
  return p.kind === ActionKind.TIGHTEN_POLICY ? policyValue(p.policy, p.value) : p.value;
}

/** An evidence item of `p` as "name: value" words ("drawdown: 4.21%", "capital: 1,000.00"). */
export function evidenceText(e: Evidence, p: Proposal): string {
  let value = e.value === "" ? "–" : e.value;
  if (FRACTIONS.has(e.name)) value = percent(e.value);
  else if (MONEY.has(e.name)) value = amountText(e.value);
  else if (POLICY_LIMITS.has(e.name) && p.kind === ActionKind.TIGHTEN_POLICY) value = policyValue(p.policy, e.value);
  return `${e.name.replaceAll("_", " ")}: ${value}`;
}

/** Who made an entry, as sent ("rules": the deterministic rules; "operator"; "supervisor"; the
 * model's name); an entry of the supervisor's own shell (an observation, an outcome) names nobody:
 * "supervisor". */
export function whoWord(entry: AuditEntry): string {
  return entry.who === "" ? "supervisor" : entry.who;
}

/** The audit trail as shown: newest first, at most KEEP entries. */
export class AuditTrail {
  private entries: AuditEntry[] = [];
  /** Messages taken (tests read it as data-updates). */
  updates = 0;

  /** One stream message: the first of a subscription replaces the trail, each later one adds. */
  take(entries: readonly AuditEntry[], first: boolean): void {
    this.updates += 1;
    if (first) this.entries = [];
    this.entries.push(...entries);
    if (this.entries.length > KEEP) this.entries = this.entries.slice(-KEEP);
  }

  /** Newest first; only `proposalId`'s entries when given, only `kind`'s when given. */
  rows(proposalId: string, kind: string): AuditEntry[] {
    return this.entries
      .filter((e) => (proposalId === "" || e.proposalId === proposalId) && (kind === "" || e.kind === kind))
      .reverse();
  }

  /** The kinds met so far, sorted: the filter's choices. */
  kinds(): string[] {
    return [...new Set(this.entries.map((e) => e.kind))].sort();
  }
}
