// The operator's buttons: STAND_DOWN (no new entries), RESUME and CLOSE_ALL (cancel everything
// and flatten every position: the emergency button). Each asks for confirmation and a reason
// first (the inspector records it on the risk event); the answer (the state after) shows below.
import { classify } from "../api/errors";
import { Mode, type RiskEvent, RiskState, type SetModeResponse } from "../gen/trademesh/risk/v1/inspector_pb";
import { label } from "../lib/format";
import { confirmWithReason } from "./confirm";
import { h } from "./dom";

interface Command {
  mode: Mode;
  id: string;
  text: string;
  question: string;
  yes: string;
  tone: string;
}

const COMMANDS: readonly Command[] = [
  {
    mode: Mode.STAND_DOWN,
    id: "risk-stand-down",
    text: "Stand down",
    question: "Stand down? No new entries are placed until someone resumes; exits and protective orders go on.",
    yes: "Stand down",
    tone: "warn",
  },
  {
    mode: Mode.RESUME,
    id: "risk-resume",
    text: "Resume",
    question: "Resume? New entries are checked and placed again; the drawdowns are re-based at today's equity.",
    yes: "Resume",
    tone: "ok",
  },
  {
    mode: Mode.CLOSE_ALL,
    id: "risk-close-all",
    text: "Close all",
    question:
      "CLOSE ALL? Every order at every venue is cancelled and every position the inspector holds is " +
      "flattened at market. Nothing is placed again until someone resumes.",
    yes: "Close everything",
    tone: "danger",
  },
];

export class RiskControls {
  readonly root: HTMLElement;
  private readonly message = h("p", { id: "risk-mode-message", class: "message", role: "status" });

  /** `setMode` sends the command; `done` is called after each answer (to refresh the page). */
  constructor(
    private readonly setMode: (mode: Mode, reason: string) => Promise<SetModeResponse>,
    private readonly done: () => void,
  ) {
    const buttons = COMMANDS.map((command) => {
      const button = h("button", { id: command.id, type: "button", class: command.tone }, command.text);
      button.addEventListener("click", () => {
        button.disabled = true;
        void this.run(command).finally(() => (button.disabled = false));
      });
      return button;
    });
    this.root = h("div", { class: "risk-controls" }, h("div", { class: "buttons" }, ...buttons), this.message);
  }

  private async run(command: Command): Promise<void> {
    const reason = await confirmWithReason(command.question, command.yes, "Cancel");
    if (reason === null) return;
    this.say("", `${command.text.toLowerCase()}…`);
    try {
      const reply = await this.setMode(command.mode, reason);
      const events = reply.events.map((e: RiskEvent) => e.reason).filter((r) => r !== "");
      const state = label(RiskState, reply.state);
      this.message.dataset.state = state;
      this.say("ok", `${command.text}: state ${state}${events.length ? ` (${events.join("; ")})` : ""}`);
    } catch (error) {
      this.say("error", `${command.text.toLowerCase()}: ${classify(error).message}`);
    }
    this.done();
  }

  private say(tone: string, text: string): void {
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}
