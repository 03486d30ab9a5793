// The Strategies page's "new draft patch" form: an id and the one market the patch trades
// (venue, symbol), sent as CreatePatch to the chosen detector; the new draft opens in the patch
// view, where the editor builds it. The detector's field violations (`patch_id`, `markets[0]`)
// show under their fields; a key without the `trade` scope is refused, and the form then stays
// disabled, saying why.
import { Code, ConnectError } from "@connectrpc/connect";
import { type Clients, unary } from "../api/clients";
import { violations } from "../api/details";
import { classify } from "../api/errors";
import { h } from "./dom";

function text(id: string, name: string, placeholder: string, size: number): HTMLInputElement {
  return h("input", { id, name, placeholder, autocomplete: "off", size });
}

export class NewPatchForm {
  readonly root: HTMLFormElement;
  private readonly fields: HTMLFieldSetElement;
  private readonly id = text("new-patch-id", "patch_id", "patch id", 16);
  private readonly venue = text("new-patch-venue", "venue", "venue", 8);
  private readonly symbol = text("new-patch-symbol", "symbol", "symbol", 10);
  private readonly button = h("button", { id: "new-patch-create", type: "submit" }, "New draft patch");
  private readonly message = h("span", { id: "new-patch-message", class: "message", role: "status" });

  constructor(
    private readonly clients: Clients,
    private readonly detector: () => string | null,
    private readonly signal: AbortSignal,
    private readonly opened: (patchId: string) => void,
  ) {
    const field = (input: HTMLInputElement, name: string | null): HTMLElement =>
      h("span", { class: "field" }, input, name !== null && h("span", { class: "violation", "data-field": name }));
    this.fields = h(
      "fieldset",
      { class: "new-patch-fields" },
      field(this.id, "patch_id"),
      field(this.venue, null),
      field(this.symbol, "markets[0]"),
      this.button,
    );
    this.root = h("form", { id: "new-patch", class: "new-patch" }, this.fields, this.message);
    this.root.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.create();
    });
  }

  private async create(): Promise<void> {
    const detector = this.detector();
    if (detector === null) return this.say("error", "no detector registered yet");
    for (const element of this.root.querySelectorAll(".violation")) element.textContent = "";
    const patchId = this.id.value.trim();
    const market = { venue: this.venue.value.trim(), symbol: this.symbol.value.trim() };
    const markets = market.venue === "" && market.symbol === "" ? [] : [market];
    this.button.disabled = true;
    this.say("", `creating ${patchId}…`);
    try {
      await this.clients.patch.createPatch({ patchId, markets }, unary(this.signal, detector));
      this.say("ok", `created ${patchId}`);
      this.id.value = "";
      this.opened(patchId);
    } catch (error) {
      this.refused(error);
    } finally {
      this.button.disabled = false;
    }
  }

  private refused(error: unknown): void {
    for (const v of violations(error)) {
      const at = this.root.querySelector(`.violation[data-field="${CSS.escape(v.field)}"]`);
      if (at !== null) at.textContent = v.description;
    }
    this.say("error", classify(error).message);
    if (error instanceof ConnectError && error.code === Code.PermissionDenied) {
      this.fields.disabled = true;
      this.fields.title = `creating patches is refused: ${classify(error).message}`;
    }
  }

  private say(tone: string, text: string): void {
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}
