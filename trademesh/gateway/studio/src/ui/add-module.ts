// The patch editor's "add a module" form: a module type from the detector's catalog (grouped by
// category), the new module's id (the first free one of the type's name, until typed over) and a
// field per parameter showing its default. Add sends the parameters that differ from their
// defaults (the rest take them); the detector's field violations (`module_id`, `type`,
// `params.<name>`) show under their fields.
import { violations } from "../api/details";
import {
  ModuleCategory,
  type ModuleType,
  type ParamSpec,
  type ParamValue,
} from "../gen/trademesh/patch/v1/patch_pb";
import { label } from "../lib/format";
import { paramText, parseParam } from "../strategies/params";
import { freeModuleId } from "../strategies/refusals";
import { h } from "./dom";
import { type Input, inputFor, inputText } from "./patch-params";

/** Sends AddModule; resolves with its error, or null when the detector accepted the module. */
export type AddModule = (moduleId: string, type: string, params: Record<string, ParamValue>) => Promise<unknown>;

interface Field {
  spec: ParamSpec;
  input: Input;
  shown: string;
}

const NEW_MODULE = "new";

export class AddModuleForm {
  readonly root: HTMLFieldSetElement;
  private readonly type = h("select", { id: "add-module-type", name: "type" });
  private readonly id = h("input", { id: "add-module-id", name: "module_id", autocomplete: "off", size: 14 });
  private readonly params = h("div", { id: "add-module-params", class: "add-params" });
  private readonly button = h("button", { id: "add-module", type: "button" }, "Add module");
  private readonly typeViolation = violation("type");
  private readonly idViolation = violation("module_id");
  private catalog: ReadonlyMap<string, ModuleType> = new Map();
  private fields: Field[] = [];
  private taken: readonly string[] = [];
  // The id the form filled in; replaced by the next suggestion unless the user typed another.
  private suggested = "";

  constructor(private readonly add: AddModule) {
    this.root = h(
      "fieldset",
      { id: "add-module-form", class: "add-module" },
      h("legend", {}, "Add a module"),
      h("label", {}, h("span", { class: "name" }, "type"), this.type, this.typeViolation),
      h("label", {}, h("span", { class: "name" }, "id"), this.id, this.idViolation),
      this.params,
      this.button,
    );
    this.type.addEventListener("change", () => this.typeChosen());
    this.button.addEventListener("click", () => void this.submit());
  }

  /** The detector's catalog: the types offered (the choice kept when it is still there). */
  setCatalog(catalog: ReadonlyMap<string, ModuleType>): void {
    if (catalog === this.catalog) return;
    this.catalog = catalog;
    const previous = this.type.value;
    const groups = new Map<ModuleCategory, ModuleType[]>();
    for (const type of catalog.values()) groups.set(type.category, [...(groups.get(type.category) ?? []), type]);
    const categories = [...groups.keys()].sort((a, b) => a - b);
    this.type.replaceChildren(
      ...categories.map((category) =>
        h(
          "optgroup",
          { label: label(ModuleCategory, category) },
          ...(groups.get(category) ?? []).map((t) => h("option", { value: t.type, title: t.description }, t.type)),
        ),
      ),
    );
    if (catalog.has(previous)) this.type.value = previous;
    this.typeChosen();
  }

  /** The patch's module ids: the suggested id is the first free one. */
  setTaken(ids: readonly string[]): void {
    this.taken = ids;
    this.suggest();
  }

  /** Disabled (the patch cannot be edited now) with why, as the fieldset's tooltip. */
  setEnabled(enabled: boolean, why: string): void {
    this.root.disabled = !enabled;
    this.root.title = enabled ? "" : why;
  }

  private typeChosen(): void {
    const type = this.catalog.get(this.type.value);
    this.fields = (type?.params ?? []).map((spec) => {
      const shown = paramText(spec.defaultValue);
      return { spec, input: inputFor(NEW_MODULE, spec, shown), shown };
    });
    this.params.replaceChildren(
      ...this.fields.map(({ spec, input }) =>
        h(
          "label",
          { title: spec.description },
          h("span", { class: "name" }, spec.name),
          input,
          violation(`params.${spec.name}`),
        ),
      ),
    );
    this.typeViolation.textContent = "";
    this.suggest();
  }

  private suggest(): void {
    if (this.id.value !== this.suggested && this.id.value !== "") return; // typed by the user
    this.suggested = this.type.value === "" ? "" : freeModuleId(this.type.value, this.taken);
    this.id.value = this.suggested;
  }

  /** The parameters that differ from their defaults, or the one that holds no value and why. */
  private changed(): { params: Record<string, ParamValue> } | { field: string; message: string } {
    const params: Record<string, ParamValue> = {};
    for (const field of this.fields) {
      const text = inputText(field.input);
      if (text === field.shown) continue;
      const value = parseParam(field.spec, text);
      if (typeof value === "string") return { field: `params.${field.spec.name}`, message: value };
      params[field.spec.name] = value;
    }
    return { params };
  }

  private async submit(): Promise<void> {
    for (const element of this.root.querySelectorAll(".violation")) element.textContent = "";
    const changed = this.changed();
    if ("field" in changed) {
      this.violationOf(changed.field)?.replaceChildren(changed.message);
      return;
    }
    this.button.disabled = true;
    try {
      const error = await this.add(this.id.value.trim(), this.type.value, changed.params);
      if (error === null) {
        this.id.value = "";
        this.typeChosen(); // the defaults again, and the next free id
      } else this.show(error);
    } finally {
      this.button.disabled = false;
    }
  }

  private show(error: unknown): void {
    for (const v of violations(error)) this.violationOf(v.field)?.replaceChildren(v.description);
  }

  private violationOf(field: string): HTMLElement | null {
    return this.root.querySelector<HTMLElement>(`.violation[data-field="${CSS.escape(field)}"]`);
  }
}

function violation(field: string): HTMLElement {
  return h("span", { class: "violation", "data-field": field });
}
