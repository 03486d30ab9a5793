// The Supervisor page (`#/supervisor`, docs/supervisor.md): its mode with a control to change it
// (SetMode: the gateway asks for the `admin` scope), the open proposals each with its action,
// target, value, reason and evidence (money rounded to the cent, the exact value on hover:
// supervisor/model) and Approve / Reject (each asks for the operator's reason: ui/confirm;
// `trade` scope), and the audit trail live (Supervisor.StreamAudit on the tab's Mux stream). A
// refusal (a key without the scope, a proposal gone meanwhile) is said on the page as the gateway
// words it. The state is read every POLL_MS and at once after each command; the loops run only
// while the page is shown.
import { type Clients, unary } from "../api/clients";
import { classify } from "../api/errors";
import type { LiveStreams } from "../api/live";
import {
  type AuditEntry,
  type GetStateResponse,
  Mode,
  type Proposal,
  Supervisor,
} from "../gen/trademesh/supervisor/v1/supervisor_pb";
import { clockTime } from "../lib/format";
import { follow, poll } from "../lib/loop";
import { exact } from "../lib/money";
import { logsHash } from "../logs/filters";
import { confirmAction, confirmWithReason } from "../ui/confirm";
import { fill, h, panel, table } from "../ui/dom";
import type { PageLoops } from "../ui/page-loops";
import {
  actionWord,
  AuditTrail,
  evidenceText,
  MODES,
  modeWord,
  target,
  valueText,
  whoWord,
} from "./model";

const POLL_MS = 2000;
const PROPOSAL_COLUMNS = ["id", "action", "on", "value", "reason", "evidence", "by", ""];
const AUDIT_COLUMNS = ["time", "kind", "by", "proposal", "what"];
const ALL_KINDS = "";

function evidenceList(p: Proposal): HTMLElement {
  const items = p.evidence.map((e) =>
    h("li", { "data-name": e.name, "data-value": e.value, title: e.value || undefined }, evidenceText(e, p)),
  );
  return h("ul", { class: "evidence" }, ...(items.length ? items : [h("li", { class: "empty" }, "none given")]));
}

/** What an answer's audit entries say: "approved; action; done: 1 patches active". */
function said(entries: readonly AuditEntry[]): string {
  return entries.map((e) => (e.kind === "done" ? e.detail : e.kind)).join("; ");
}

export class SupervisorPage {
  readonly root: HTMLElement;
  private readonly stateStatus: HTMLElement;
  private readonly auditStatus: HTMLElement;
  private readonly mode = h("strong", { id: "supervisor-mode" }, "…");
  private readonly meaning = h("span", { class: "muted" });
  private readonly modeChoice = h("select", { id: "supervisor-mode-choice", "aria-label": "mode" });
  private drawnMode: Mode | undefined = undefined;
  private readonly setMode = h("button", { id: "supervisor-set-mode", type: "button" }, "Set mode");
  private readonly message = h("p", { id: "supervisor-message", class: "message", role: "status" });
  private readonly observed = h("p", { id: "supervisor-observed", class: "who" });
  private readonly bounds = h("pre", { id: "supervisor-bounds", class: "code" });
  private readonly proposals = h("tbody", { id: "supervisor-proposals-rows" });
  private readonly audit = h("tbody", { id: "supervisor-audit-rows" });
  private readonly kindChoice = h("select", { id: "supervisor-audit-kind", "aria-label": "kind" });
  private readonly onlyProposal = h("span", { id: "supervisor-audit-only" });
  private readonly trail = new AuditTrail();
  private proposalFilter = "";

  constructor(
    private readonly clients: Clients,
    private readonly live: LiveStreams,
    private readonly loops: PageLoops,
  ) {
    fill(this.modeChoice, ...MODES.map((m) => h("option", { value: String(m.mode), title: m.meaning }, m.word)));
    this.setMode.addEventListener("click", () => void this.changeMode());
    // Nothing to pick until the mode in force is known: a pick made before the first state was
    // drawn was put back by that draw (the choice follows the mode whenever the mode changes).
    this.modeChoice.disabled = true;
    this.setMode.disabled = true;
    this.kindChoice.addEventListener("change", () => this.drawAudit());
    const state = panel(
      "Supervisor",
      "supervisor-state",
      h("p", {}, "Mode: ", this.mode, " ", this.meaning),
      h("div", { class: "controls" }, this.modeChoice, this.setMode),
      this.message,
      h(
        "p",
        { class: "who" },
        "Changing the mode needs a key with the admin scope; approving or rejecting a proposal, the " +
          "trade scope (docs/gateway.md, Scopes). A key without it is refused, and the refusal shown here.",
      ),
      this.observed,
      h("details", {}, h("summary", {}, "The operator's bounds"), this.bounds),
    );
    this.stateStatus = state.status;
    const open = panel(
      "Open proposals",
      "supervisor-proposals",
      h("div", { class: "scroll" }, table(PROPOSAL_COLUMNS, this.proposals)),
    );
    const trail = panel(
      "Audit trail",
      "supervisor-audit",
      h("div", { class: "controls" }, h("label", {}, "Kind ", this.kindChoice), this.onlyProposal),
      h("div", { class: "scroll audit-trail" }, table(AUDIT_COLUMNS, this.audit)),
    );
    this.auditStatus = trail.status;
    this.root = h("main", { id: "supervisor-page", class: "page", hidden: true }, state.root, open.root, trail.root);
    this.drawProposals([]);
    this.drawAudit();
  }

  /** Reads the state and follows the audit trail while the page is shown. */
  show(): void {
    const signal = this.loops.start();
    if (signal === null) return;
    void poll(this.loops.context(signal, this.stateStatus), POLL_MS, () => this.refresh(signal));
    void follow(
      this.loops.context(signal, this.auditStatus),
      (sub, opened) => this.live.subscribe(Supervisor.method.streamAudit, {}, { signal: sub, onAdded: opened }),
      (message, index) => {
        this.trail.take(message.entries, index === 0);
        this.drawAudit();
      },
    );
  }

  /** Stops (another page is shown). */
  hide(): void {
    this.loops.stop();
  }

  private async refresh(signal: AbortSignal): Promise<void> {
    const state = await this.clients.supervisor.getState({}, unary(signal));
    if (!signal.aborted) this.drawState(state);
  }

  private say(tone: string, text: string): void {
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }

  /** After a command: the state now (the poll would show it within POLL_MS). */
  private async after(): Promise<void> {
    const signal = this.loops.signal;
    if (signal === undefined) return;
    try {
      await this.refresh(signal);
    } catch {
      // the poll reports it on the panel's status line
    }
  }

  private async changeMode(): Promise<void> {
    const mode = Number(this.modeChoice.value) as Mode;
    const chosen = MODES.find((m) => m.mode === mode);
    if (chosen === undefined) return;
    const dropping = mode !== Mode.PROPOSE && this.proposals.querySelector("tr[data-proposal-id]") !== null;
    const question =
      `Set the Supervisor's mode to ${chosen.word}? It ${chosen.meaning}.` +
      (dropping ? " The open proposals are dropped (recorded)." : "");
    if (!(await confirmAction(question, `Set ${chosen.word}`, "Cancel"))) return;
    this.setMode.disabled = true;
    this.say("", `setting ${chosen.word}…`);
    try {
      const reply = await this.clients.supervisor.setMode({ mode }, unary(this.loops.appSignal));
      this.say("ok", `mode ${modeWord(reply.mode)}`);
    } catch (error) {
      this.say("error", `set mode: ${classify(error).message}`);
    } finally {
      this.setMode.disabled = false;
    }
    await this.after();
  }

  private async decide(p: Proposal, approve: boolean, button: HTMLButtonElement): Promise<void> {
    const what = `${actionWord(p.kind)} ${target(p)}${p.value === "" ? "" : ` to ${p.value}`}`;
    const question = approve
      ? `Approve: ${what}? It is checked again against the latest look, then carried out.`
      : `Reject: ${what}? It is dropped; the rules may propose it again at a later look.`;
    const verb = approve ? "Approve" : "Reject";
    const reason = await confirmWithReason(question, verb, "Cancel");
    if (reason === null) return;
    button.disabled = true;
    this.say("", `${verb.toLowerCase()} ${p.proposalId}…`);
    try {
      const request = { proposalId: p.proposalId, reason };
      const reply = approve
        ? await this.clients.supervisor.approve(request, unary(this.loops.appSignal))
        : await this.clients.supervisor.reject(request, unary(this.loops.appSignal));
      const refused = reply.audit.some((e) => e.kind === "refused");
      this.say(refused ? "error" : "ok", `${p.proposalId}: ${said(reply.audit)}`);
    } catch (error) {
      this.say("error", `${verb.toLowerCase()} ${p.proposalId}: ${classify(error).message}`);
      button.disabled = false;
    }
    await this.after();
  }

  private drawState(state: GetStateResponse): void {
    const word = modeWord(state.mode);
    this.mode.textContent = word;
    this.mode.dataset.mode = word;
    this.meaning.textContent = `(${MODES.find((m) => m.mode === state.mode)?.meaning ?? ""})`;
    // The choice follows the mode only when the mode changes: a pick the user has made stays
    // through the polls until they set it (a poll between picking and pressing "Set mode" reset it).
    if (state.mode !== this.drawnMode) this.modeChoice.value = String(state.mode);
    if (this.drawnMode === undefined) {
      this.modeChoice.disabled = false;
      this.setMode.disabled = false;
    }
    this.drawnMode = state.mode;
    this.observed.textContent =
      state.observedNs === 0n ? "No look at the mesh yet." : `Last look ${clockTime(state.observedNs)}: ${state.observed}`;
    this.bounds.textContent = state.boundsToml;
    this.drawProposals(state.open);
  }

  private drawProposals(open: readonly Proposal[]): void {
    this.proposals.dataset.count = String(open.length);
    if (open.length === 0) {
      const text = "No proposal waiting (in propose mode, the rules' and the model's proposals wait here).";
      fill(this.proposals, h("tr", { class: "empty" }, h("td", { colspan: PROPOSAL_COLUMNS.length }, text)));
      return;
    }
    fill(this.proposals, ...open.map((p) => this.proposalRow(p)));
  }

  private proposalRow(p: Proposal): HTMLElement {
    const approve = h("button", { type: "button", class: "approve" }, "Approve");
    const reject = h("button", { type: "button", class: "reject danger" }, "Reject");
    approve.addEventListener("click", () => void this.decide(p, true, approve));
    reject.addEventListener("click", () => void this.decide(p, false, reject));
    return h(
      "tr",
      {
        "data-proposal-id": p.proposalId,
        "data-kind": actionWord(p.kind),
        "data-strategy": p.strategy,
        "data-policy": p.policy,
        "data-value": p.value,
        "data-source": p.source,
      },
      h("td", { class: "mono" }, this.proposalLink(p.proposalId)),
      h("td", {}, actionWord(p.kind)),
      h("td", {}, target(p)),
      h("td", { class: "num", "data-col": "value" }, p.value === "" ? "–" : exact(p.value, valueText(p), "", "amount")),
      h("td", { class: "reason", "data-col": "reason" }, p.reason),
      h("td", { "data-col": "evidence" }, evidenceList(p)),
      h("td", {}, p.source || "rules"),
      h("td", { class: "buttons" }, approve, reject),
    );
  }

  /** A proposal's id: a button showing only its entries in the trail. */
  private proposalLink(id: string): HTMLElement {
    const button = h("button", { type: "button", class: "link", title: "its entries in the audit trail" }, id);
    button.addEventListener("click", () => {
      this.proposalFilter = id;
      this.drawAudit();
    });
    return button;
  }

  private drawKinds(): void {
    const chosen = this.kindChoice.value;
    const kinds = this.trail.kinds();
    if (chosen !== ALL_KINDS && !kinds.includes(chosen)) kinds.push(chosen);
    fill(this.kindChoice, ...[ALL_KINDS, ...kinds].map((k) => h("option", { value: k }, k === ALL_KINDS ? "every kind" : k)));
    this.kindChoice.value = chosen;
  }

  private drawFilter(): void {
    if (this.proposalFilter === "") {
      fill(this.onlyProposal);
      return;
    }
    const all = h("button", { id: "supervisor-audit-all", type: "button" }, "every proposal");
    all.addEventListener("click", () => {
      this.proposalFilter = "";
      this.drawAudit();
    });
    const lines = h(
      "a",
      { href: logsHash({ service: "supervisor", text: this.proposalFilter }), title: "the supervisor's log lines naming it" },
      "log lines",
    );
    fill(this.onlyProposal, `only ${this.proposalFilter} `, all, " ", lines);
  }

  private drawAudit(): void {
    this.drawKinds();
    this.drawFilter();
    const rows = this.trail.rows(this.proposalFilter, this.kindChoice.value);
    this.audit.dataset.count = String(rows.length);
    this.audit.dataset.updates = String(this.trail.updates);
    if (rows.length === 0) {
      const text = this.trail.updates === 0 ? "waiting for the audit stream" : "no entry (yet)";
      fill(this.audit, h("tr", { class: "empty" }, h("td", { colspan: AUDIT_COLUMNS.length }, text)));
      return;
    }
    fill(this.audit, ...rows.map((e) => this.auditRow(e)));
  }

  private auditRow(e: AuditEntry): HTMLElement {
    return h(
      "tr",
      { "data-kind": e.kind, "data-proposal-id": e.proposalId, "data-who": whoWord(e), "data-ts": String(e.tsNs) },
      h("td", { class: "num" }, clockTime(e.tsNs)),
      h("td", {}, h("span", { class: `badge audit-${e.kind}` }, e.kind)),
      h("td", {}, whoWord(e)),
      h("td", { class: "mono" }, e.proposalId === "" ? "" : this.proposalLink(e.proposalId)),
      h("td", { class: "audit-detail", title: e.detail }, e.detail),
    );
  }
}
