// A patch's parameters, one fieldset per module, an input per parameter as its ParamSpec says
// (number with its bounds, checkbox, choice, text). "Set" sends the module's changed values in
// one SetParams; the detector's field violations (params.<name>) show under their inputs.
import { classify } from "../api/errors";
import { violations } from "../api/details";
import {
  type Module,
  type ModuleType,
  ParamKind,
  type ParamSpec,
  type ParamValue,
  type PatchGraph,
} from "../gen/trademesh/patch/v1/patch_pb";
import { bounds, paramText, parseParam } from "../strategies/params";
import { h } from "./dom";

export type SetParams = (moduleId: string, params: Record<string, ParamValue>) => Promise<void>;

export type Input = HTMLInputElement | HTMLSelectElement;

interface Field {
  spec: ParamSpec;
  input: Input;
  violation: HTMLElement;
  shown: string;
}

/** The input of one parameter, named `<moduleId>.<param>`, showing `value`. */
export function inputFor(moduleId: string, spec: ParamSpec, value: string): Input {
  const name = `${moduleId}.${spec.name}`;
  if (spec.kind === ParamKind.CHOICE) {
    const select = h("select", { name, "data-param": spec.name });
    select.append(...spec.choices.map((choice) => h("option", { value: choice }, choice)));
    select.value = value;
    return select;
  }
  if (spec.kind === ParamKind.BOOL) {
    const box = h("input", { type: "checkbox", name, "data-param": spec.name });
    box.checked = value === "true";
    return box;
  }
  const numeric = spec.kind === ParamKind.INT || spec.kind === ParamKind.FLOAT;
  const input = h("input", {
    name,
    "data-param": spec.name,
    type: numeric ? "number" : "text",
    step: spec.kind === ParamKind.INT ? 1 : "any",
    min: spec.minimum,
    max: spec.maximum,
    autocomplete: "off",
  });
  input.value = value;
  return input;
}

/** What an input holds, as text ("true" / "false" for a checkbox). */
export function inputText(input: Input): string {
  return input instanceof HTMLInputElement && input.type === "checkbox" ? String(input.checked) : input.value;
}

function current(field: Field): string {
  return inputText(field.input);
}

class ModuleParams {
  readonly root: HTMLFieldSetElement;
  private readonly fields: Field[] = [];
  private readonly message = h("p", { class: "message", role: "status" });
  private readonly button = h("button", { type: "button", class: "set-params" }, "Set");

  constructor(
    private readonly module: Module,
    type: ModuleType,
    private readonly set: SetParams,
  ) {
    const rows = type.params.map((spec) => {
      const shown = paramText(module.params[spec.name] ?? spec.defaultValue);
      const input = inputFor(module.moduleId, spec, shown);
      const violation = h("span", { class: "violation", "data-field": `${module.moduleId}.${spec.name}` });
      this.fields.push({ spec, input, violation, shown });
      const hint = bounds(spec);
      const title = [spec.description, hint].filter((t) => t !== "").join(" · ");
      return h("label", { title }, h("span", { class: "name" }, spec.name), input, violation);
    });
    this.button.dataset.moduleId = module.moduleId;
    this.button.addEventListener("click", () => void this.submit());
    this.root = h(
      "fieldset",
      { class: "module-params", "data-module-id": module.moduleId },
      h("legend", {}, `${module.moduleId} · ${module.type}`),
      ...rows,
      h("div", { class: "actions" }, this.button, this.message),
    );
  }

  private changed(): Record<string, ParamValue> | string {
    const params: Record<string, ParamValue> = {};
    for (const field of this.fields) {
      const text = current(field);
      if (text === field.shown) continue;
      const value = parseParam(field.spec, text);
      if (typeof value === "string") return value;
      params[field.spec.name] = value;
    }
    return params;
  }

  private async submit(): Promise<void> {
    for (const field of this.fields) field.violation.textContent = "";
    const params = this.changed();
    if (typeof params === "string") return this.say("error", params);
    if (Object.keys(params).length === 0) return this.say("", "nothing changed");
    this.button.disabled = true;
    this.say("", "setting…");
    try {
      await this.set(this.module.moduleId, params);
      this.say("ok", "set");
    } catch (error) {
      this.show(error);
    } finally {
      this.button.disabled = false;
    }
  }

  private show(error: unknown): void {
    const rest: string[] = [];
    for (const violation of violations(error)) {
      const name = violation.field.replace(/^params\./, "");
      const field = this.fields.find((f) => f.spec.name === name);
      if (field !== undefined) field.violation.textContent = violation.description;
      else rest.push(`${violation.field}: ${violation.description}`);
    }
    this.say("error", [classify(error).message, ...rest].join("; "));
  }

  private say(tone: string, text: string): void {
    this.message.dataset.tone = tone;
    this.message.textContent = text;
  }
}

/** Every module's parameters; modules without parameters are left out. */
export function paramsForm(patch: PatchGraph, catalog: Map<string, ModuleType>, set: SetParams): HTMLElement {
  const sets = patch.evaluationOrder
    .map((id) => patch.modules.find((m) => m.moduleId === id))
    .filter((m): m is Module => m !== undefined)
    .flatMap((module) => {
      const type = catalog.get(module.type);
      return type === undefined || type.params.length === 0 ? [] : [new ModuleParams(module, type, set).root];
    });
  return h("div", { id: "patch-params", class: "params" }, ...sets);
}
