// The patch graph editor: on a patch that can change (a draft, or a paused or errored one) add a
// module from the catalog (ui/add-module), remove one, connect a cable by picking an output port
// and an input port on the graph (in either order), remove a cable. Every change is a call to the
// detector (AddModule, RemoveModule, ConnectCable, DisconnectCable), after which the patch is read
// again (GetPatch): the graph shows only what the detector accepted. A refusal (a cycle, another
// type, an input taken, an unknown port) is pinned to the port or module its field violation
// names (strategies/refusals) until the next change; so are an activation's reasons. A key
// without the `trade` scope is refused (PERMISSION_DENIED): the controls are then disabled, the
// refusal saying why.
import { Code, ConnectError } from "@connectrpc/connect";
import type { CallOptions } from "@connectrpc/connect";
import type { Clients } from "../api/clients";
import { violations } from "../api/details";
import { classify } from "../api/errors";
import {
  type Cable,
  type ModuleType,
  type ParamValue,
  type PatchGraph,
  PatchState,
} from "../gen/trademesh/patch/v1/patch_pb";
import { label } from "../lib/format";
import { type PortRef, portName, portsOf, typeName } from "../strategies/ports";
import { type Anchor, cableAnchor, type Note, subjectAnchor } from "../strategies/refusals";
import { AddModuleForm } from "./add-module";
import { h } from "./dom";
import type { GraphEditing } from "./patch-graph";

const EDITABLE: ReadonlySet<PatchState> = new Set([PatchState.DRAFT, PatchState.PAUSED, PatchState.ERRORED]);

/** What the editor needs of the patch view. */
export interface EditorHost {
  /** Options of a call to the patch's detector; null while no patch is open. */
  options(): CallOptions | null;
  /** Reads the patch again from the detector and draws it. */
  reload(): Promise<void>;
  /** Draws the graph again (a port picked or let go). */
  redraw(): void;
}

export class PatchEditor {
  readonly root: HTMLElement;
  private readonly hint = h("p", { id: "editor-hint", class: "hint" });
  private readonly message = h("p", { id: "editor-message", class: "message", role: "status" });
  private readonly form: AddModuleForm;
  private patch: PatchGraph | null = null;
  private catalog: ReadonlyMap<string, ModuleType> | null = null;
  private picked: PortRef | null = null;
  private pinned: Note[] = [];
  // Why this key may not edit (the detector's gateway said PERMISSION_DENIED), once it was said.
  private denied: string | null = null;
  // The changes asked for, applied one after the other (a pick made while one is under way is
  // sent after it, never dropped).
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped whenever what the editor adds to the graph changes (a pick, the notes). */
  stamp = 0;

  constructor(
    private readonly clients: Clients,
    private readonly host: EditorHost,
  ) {
    this.form = new AddModuleForm((moduleId, type, params) => this.addModule(moduleId, type, params));
    this.root = h("div", { id: "patch-editor", class: "patch-editor" }, this.form.root, this.hint, this.message);
    this.controls();
  }

  /** The refusals pinned to the graph. */
  get notes(): readonly Note[] {
    return this.pinned;
  }

  /** The patch as the detector last gave it, and the catalog (null until it is read). */
  show(patch: PatchGraph, catalog: ReadonlyMap<string, ModuleType> | null): void {
    this.patch = patch;
    this.catalog = catalog;
    if (catalog !== null) this.form.setCatalog(catalog);
    this.form.setTaken(patch.modules.map((m) => m.moduleId));
    if (!this.editable() && this.picked !== null) {
      this.picked = null;
      this.stamp += 1;
    }
    this.controls();
  }

  /** Another patch is opened (or none): nothing picked, pinned or said. */
  reset(): void {
    this.patch = null;
    this.picked = null;
    this.pinned = [];
    this.denied = null;
    this.stamp += 1;
    this.say("", "");
    this.controls();
  }

  /** The graph's editing hooks while the patch can be edited, else null. */
  editing(): GraphEditing | null {
    if (!this.editable()) return null;
    return {
      picked: this.picked,
      pick: (ref) => this.pick(ref),
      removeModule: (moduleId) => void this.removeModule(moduleId),
      removeCable: (cable) => void this.removeCable(cable),
    };
  }

  /** Unpins the refusals (the patch moves on: an activation or a pause is asked for). */
  unpin(): void {
    if (this.pinned.length === 0 && this.picked === null) return;
    this.pinned = [];
    this.picked = null;
    this.stamp += 1;
    this.controls();
    this.host.redraw();
  }

  /** A refused activation (the view says it): each reason pinned to the port or module it names. */
  showReasons(error: unknown): void {
    this.pinned = this.placed(error, (subject) => subjectAnchor(subject, (id) => this.portsOf(id)));
    this.stamp += 1;
    this.host.redraw();
  }

  private editable(): boolean {
    return this.patch !== null && EDITABLE.has(this.patch.state) && this.denied === null;
  }

  private portsOf(moduleId: string): ReturnType<typeof portsOf> | undefined {
    const module = this.patch?.modules.find((m) => m.moduleId === moduleId);
    if (module === undefined) return undefined;
    return portsOf(module.moduleId, module.type, this.catalog, this.patch?.cables ?? []);
  }

  private controls(): void {
    const why = this.whyNot();
    this.form.setEnabled(why === null, why ?? "");
    this.root.dataset.editable = String(why === null);
    this.hint.textContent = why ?? this.howTo();
  }

  /** Why the patch cannot be edited now, or null when it can. */
  private whyNot(): string | null {
    if (this.patch === null) return "no patch open";
    if (this.denied !== null) return `editing is refused: ${this.denied}`;
    if (this.patch.state === PatchState.ACTIVE) return "active: pause it to change its modules or cables";
    const state = label(PatchState, this.patch.state);
    if (!EDITABLE.has(this.patch.state)) return `${state}: its modules and cables cannot change`;
    return null;
  }

  private howTo(): string {
    const picked = this.picked;
    if (picked === null) {
      return "pick an output port, then an input port, to connect them; × removes a module or a cable";
    }
    const other = picked.direction === "out" ? "an input" : "an output";
    const name = portName(picked);
    return `picked ${name} (${typeName(picked.type)}): now ${other} port, or ${name} again to let go`;
  }

  private pick(ref: PortRef): void {
    const picked = this.picked;
    const same = picked !== null && picked.direction === ref.direction;
    if (picked === null || same) {
      const again = same && portName(picked) === portName(ref);
      this.picked = again ? null : ref;
      this.pinned = [];
      this.stamp += 1;
      this.controls();
      this.host.redraw();
      return;
    }
    const [from, to] = picked.direction === "out" ? [picked, ref] : [ref, picked];
    void this.connect(from, to);
  }

  private async connect(from: PortRef, to: PortRef): Promise<void> {
    const cable = { fromModule: from.moduleId, fromPort: from.port, toModule: to.moduleId, toPort: to.port };
    const text = `${portName(from)} → ${portName(to)}`;
    await this.edit(
      `connecting ${text}`,
      `connected ${text}`,
      (options, patchId) => this.clients.patch.connectCable({ patchId, cable }, options),
      (field) => cableAnchor(field, cable),
    );
  }

  private async removeCable(cable: Cable): Promise<void> {
    const text = `${cable.fromModule}.${cable.fromPort} → ${cable.toModule}.${cable.toPort}`;
    await this.edit(
      `removing the cable ${text}`,
      `removed the cable ${text}`,
      (options, patchId) => this.clients.patch.disconnectCable({ patchId, cable }, options),
      (field) => cableAnchor(field, cable),
    );
  }

  private async removeModule(moduleId: string): Promise<void> {
    await this.edit(
      `removing ${moduleId}`,
      `removed ${moduleId} and its cables`,
      (options, patchId) => this.clients.patch.removeModule({ patchId, moduleId }, options),
      () => ({ kind: "module", moduleId }),
    );
  }

  private addModule(moduleId: string, type: string, params: Record<string, ParamValue>): Promise<unknown> {
    return this.edit(
      `adding ${moduleId} (${type})`,
      `added ${moduleId} (${type})`,
      (options, patchId) => this.clients.patch.addModule({ patchId, moduleId, type, params }, options),
      () => null, // the module is not drawn: its refusal shows under the form's fields
    );
  }

  /** One change, after those asked for before it: the call, its refusal pinned or said, then the
   * patch read again. Resolves with the call's error, or null when the detector accepted it. */
  private edit(
    doing: string,
    done: string,
    call: (options: CallOptions, patchId: string) => Promise<unknown>,
    anchor: (field: string) => Anchor | null,
  ): Promise<unknown> {
    // The pick is used and the last refusal answered: both go at once.
    this.picked = null;
    this.pinned = [];
    this.stamp += 1;
    this.controls();
    this.host.redraw();
    const applied = this.queue.then(() => this.apply(doing, done, call, anchor));
    this.queue = applied.catch(() => undefined);
    return applied;
  }

  private async apply(
    doing: string,
    done: string,
    call: (options: CallOptions, patchId: string) => Promise<unknown>,
    anchor: (field: string) => Anchor | null,
  ): Promise<unknown> {
    const options = this.host.options();
    const patchId = this.patch?.patchId;
    if (options === null || patchId === undefined) return new Error("no patch is open");
    this.say("", `${doing}…`);
    let failure: unknown = null;
    try {
      await call(options, patchId);
      this.say("ok", done);
    } catch (error) {
      failure = error;
      this.pin(error, anchor);
    }
    try {
      await this.host.reload(); // drawn with the refusal's notes
    } catch (error) {
      const said = this.message.textContent ?? "";
      this.say("error", `${said}; the patch could not be read again: ${classify(error).message}`);
      this.host.redraw();
    }
    this.controls();
    return failure;
  }

  /** Says a refusal (its message names every violation) and pins each violation where `anchor`
   * puts it. */
  private pin(error: unknown, anchor: (field: string) => Anchor | null): void {
    if (error instanceof ConnectError && error.code === Code.PermissionDenied) this.denied = classify(error).message;
    this.pinned = this.placed(error, anchor);
    this.stamp += 1;
    this.say("error", classify(error).message);
  }

  /** The error's violations that `anchor` places on the graph. */
  private placed(error: unknown, anchor: (field: string) => Anchor | null): Note[] {
    return violations(error).flatMap((violation) => {
      const at = anchor(violation.field);
      return at === null ? [] : [{ anchor: at, field: violation.field, text: violation.description }];
    });
  }

  private say(tone: string, text: string): void {
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}
