// A patch drawn as SVG: modules as boxes (id, type, place in the evaluation order) in columns by
// cable depth, each with its ports (inputs on the left edge, outputs on the right, as the catalog
// lists them), cables as curves from output to input, and on each cable its source port's latest
// probe value. The values are also kept in data attributes (data-value) for tests and tools; they
// are redrawn at most once per animation frame however fast probes arrive.
//
// While the patch can be edited (ui/patch-editor) its ports are buttons (pick an output and an
// input to connect them), each module and cable has a remove handle, and the detector's refusals
// are notes pinned to the port or module they concern (strategies/refusals).
import type { Cable, ModuleType, PatchGraph, ProbeUpdate } from "../gen/trademesh/patch/v1/patch_pb";
import { layers, type Placed } from "../strategies/layout";
import { type Direction, type PortInfo, type PortRef, type Ports, portsOf, typeName } from "../strategies/ports";
import { type Anchor, anchorKey, type Note } from "../strategies/refusals";
import { h, svg, throttled } from "./dom";

const BOX_W = 170;
const HEAD_H = 40;
const PORT_ROW = 16;
const MIN_BOX_H = 44;
const GAP_X = 120;
const GAP_Y = 22;
const PAD = 16;
const LONGEST_TEXT = 14;
const NOTE_W = 240;
// Where along a cable its remove handle sits (0 its output, 1 its input).
const HANDLE_AT = 0.12;

/** A probe value as shown on a cable: numbers rounded, booleans as true/false, text cut short. */
export function probeText(update: ProbeUpdate): string {
  const value = update.value?.value;
  if (value === undefined || value.case === undefined) return "–";
  if (value.case === "boolean") return value.value ? "true" : "false";
  if (value.case === "number") {
    const n = value.value;
    if (!Number.isFinite(n)) return String(n);
    const digits = Math.abs(n) >= 1000 ? 2 : 4;
    return String(Number(n.toFixed(digits)));
  }
  return value.value.length > LONGEST_TEXT ? `${value.value.slice(0, LONGEST_TEXT - 1)}…` : value.value;
}

/** A probe value in full, for its tooltip. */
function fullText(update: ProbeUpdate): string {
  const value = update.value?.value;
  return value === undefined || value.case === undefined ? "" : String(value.value);
}

/** What the editor gives the graph while the patch can be edited. */
export interface GraphEditing {
  /** The port picked first, waiting for its other end. */
  picked: PortRef | null;
  pick(ref: PortRef): void;
  removeModule(moduleId: string): void;
  removeCable(cable: Cable): void;
}

export interface GraphDrawing {
  catalog: ReadonlyMap<string, ModuleType> | null;
  /** null: the patch is shown, not edited (active, archived, or the key may not edit). */
  editing: GraphEditing | null;
  /** The detector's refusals, each at its port or module. */
  notes: readonly Note[];
}

interface Box {
  x: number;
  y: number;
  height: number;
}

/** Where each module's box is, and where each of its ports meets the box's edge. */
class Geometry {
  readonly boxes = new Map<string, Box>();
  /** By anchorKey: "in:m.p", "out:m.p". */
  readonly ports = new Map<string, { x: number; y: number }>();
  width = 0;
  height = 0;

  constructor(placed: Map<string, Placed>, ports: Map<string, Ports>) {
    const columnY: number[] = [];
    const sorted = [...placed.values()].sort((a, b) => a.column - b.column || a.row - b.row);
    for (const place of sorted) {
      const { inputs = [], outputs = [] } = ports.get(place.moduleId) ?? {};
      const height = Math.max(MIN_BOX_H, HEAD_H + PORT_ROW * Math.max(inputs.length, outputs.length) + 4);
      const x = PAD + place.column * (BOX_W + GAP_X);
      const y = columnY[place.column] ?? PAD;
      columnY[place.column] = y + height + GAP_Y;
      this.boxes.set(place.moduleId, { x, y, height });
      const at = (i: number): number => y + HEAD_H + PORT_ROW * (i + 0.5);
      inputs.forEach((p, i) => this.ports.set(`in:${place.moduleId}.${p.name}`, { x, y: at(i) }));
      outputs.forEach((p, i) => this.ports.set(`out:${place.moduleId}.${p.name}`, { x: x + BOX_W, y: at(i) }));
      this.width = Math.max(this.width, x + BOX_W + PAD);
      this.height = Math.max(this.height, y + height + PAD);
    }
  }

  /** Where a note about `anchor` goes: under its port, or under its module's head. */
  point(anchor: Anchor): { x: number; y: number } | undefined {
    if (anchor.kind === "port") return this.ports.get(anchorKey(anchor));
    const box = this.boxes.get(anchor.moduleId);
    return box === undefined ? undefined : { x: box.x + BOX_W / 2, y: box.y + HEAD_H - 6 };
  }
}

type Point = [number, number];

/** The point at `t` (0 to 1) of the cubic Bézier curve p0 p1 p2 p3. */
function onCurve(p0: Point, p1: Point, p2: Point, p3: Point, t: number): Point {
  const u = 1 - t;
  const [a, b, c, d] = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
  return [a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]];
}

/** Adds a click (and Enter / Space) action to an SVG element drawn as a button. */
function action(element: SVGElement, label: string, run: () => void): void {
  element.setAttribute("role", "button");
  element.setAttribute("tabindex", "0");
  element.setAttribute("aria-label", label);
  element.addEventListener("click", (event) => {
    event.stopPropagation();
    run();
  });
  element.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      run();
    }
  });
}

export class PatchGraphView {
  readonly root = h("div", { class: "patch-graph" });
  private readonly values = new Map<string, ProbeUpdate>();
  private labels: { port: string; text: SVGTextElement }[] = [];
  private readonly redraw = throttled(() => this.drawValues());

  /** Draws the patch's modules, ports and cables (values already known stay on their cables). */
  draw(patch: PatchGraph, drawing: GraphDrawing): void {
    const { placed } = layers(patch.evaluationOrder, patch.cables);
    const types = new Map(patch.modules.map((m) => [m.moduleId, m.type]));
    const ports = new Map(
      patch.modules.map((m) => [m.moduleId, portsOf(m.moduleId, m.type, drawing.catalog, patch.cables)]),
    );
    const geometry = new Geometry(placed, ports);
    const [width, height] = [Math.max(geometry.width, 200), Math.max(geometry.height, 60)];
    const root = svg("svg", { id: "patch-graph", width, height, viewBox: `0 0 ${width} ${height}` });
    root.dataset.editing = String(drawing.editing !== null);
    const refused = new Set(drawing.notes.map((note) => anchorKey(note.anchor)));
    const cables = svg("g", { class: "cables" });
    const labels = svg("g", { class: "probes" });
    const handles = svg("g", { class: "cable-handles" });
    this.labels = [];
    for (const cable of patch.cables) {
      const from = geometry.ports.get(`out:${cable.fromModule}.${cable.fromPort}`);
      const to = geometry.ports.get(`in:${cable.toModule}.${cable.toPort}`);
      if (from !== undefined && to !== undefined) {
        this.cable(cable, [from.x, from.y, to.x, to.y], { cables, labels, handles }, drawing.editing);
      }
    }
    const modules = svg("g", { class: "modules" });
    patch.evaluationOrder.forEach((id, index) => {
      const box = geometry.boxes.get(id);
      if (box === undefined) return;
      const look = { failed: patch.error?.moduleId === id, refused };
      const type = types.get(id) ?? "?";
      modules.append(this.box(id, type, index + 1, box, ports.get(id), look, drawing.editing));
    });
    root.append(cables, modules, labels, handles);
    this.root.replaceChildren(root, this.notes(drawing.notes, geometry, width, height));
    this.drawValues();
  }

  /** A probe update: the latest value of an output port wins. */
  probe(update: ProbeUpdate): void {
    this.values.set(`${update.moduleId}.${update.port}`, update);
    this.redraw();
  }

  /** Forgets every value (another patch, or its probes started over). */
  clearValues(): void {
    this.values.clear();
    this.redraw();
  }

  private box(
    id: string,
    type: string,
    order: number,
    { x, y, height }: Box,
    ports: Ports | undefined,
    look: { failed: boolean; refused: ReadonlySet<string> },
    editing: GraphEditing | null,
  ): SVGGElement {
    const classes = ["module", look.failed ? "errored" : "", look.refused.has(`module:${id}`) ? "refused" : ""];
    const group = svg(
      "g",
      { class: classes.join(" ").trim(), "data-module-id": id, "data-type": type, "data-order": order },
      svg("rect", { class: "box", x, y, width: BOX_W, height, rx: 5 }),
      svg("text", { class: "id", x: x + 8, y: y + 18 }, id),
      svg("text", { class: "type", x: x + 8, y: y + 35 }, type),
      svg("text", { class: "order", x: x + BOX_W - 8, y: y + 18, "text-anchor": "end" }, `#${order}`),
    );
    const row = (i: number): number => y + HEAD_H + PORT_ROW * (i + 0.5);
    const port = (p: PortInfo, i: number, direction: Direction): SVGGElement => {
      const ref = { moduleId: id, port: p.name, direction, type: p.type };
      return this.port(ref, p, direction === "in" ? x : x + BOX_W, row(i), look.refused, editing);
    };
    group.append(...(ports?.inputs ?? []).map((p, i) => port(p, i, "in")));
    group.append(...(ports?.outputs ?? []).map((p, i) => port(p, i, "out")));
    if (editing !== null) {
      const handle = svg(
        "g",
        { class: "remove-module", "data-module-id": id },
        svg("rect", { x: x + BOX_W - 22, y: y + 23, width: 16, height: 16, rx: 3 }),
        svg("text", { x: x + BOX_W - 14, y: y + 35, "text-anchor": "middle" }, "×"),
        svg("title", {}, `remove ${id} (and its cables)`),
      );
      action(handle, `remove module ${id}`, () => editing.removeModule(id));
      group.append(handle);
    }
    return group;
  }

  private port(
    ref: PortRef,
    info: PortInfo,
    x: number,
    y: number,
    refused: ReadonlySet<string>,
    editing: GraphEditing | null,
  ): SVGGElement {
    const key = `${ref.direction}:${ref.moduleId}.${ref.port}`;
    const picked = editing?.picked;
    const isPicked = picked != null && `${picked.direction}:${picked.moduleId}.${picked.port}` === key;
    const classes = ["port", ref.direction, isPicked ? "picked" : "", refused.has(key) ? "refused" : ""];
    const inside = ref.direction === "in" ? { x: x + 8, "text-anchor": "start" } : { x: x - 8, "text-anchor": "end" };
    // The port's clickable area: its circle and name, half the box's width (a name's glyphs alone
    // are a thin target).
    const hitX = ref.direction === "in" ? x - 6 : x - BOX_W / 2;
    const side = ref.direction === "in" ? "input" : "output";
    const optional = info.optional ? ", optional" : "";
    const group = svg(
      "g",
      {
        class: classes.join(" ").trim(),
        "data-port": `${ref.moduleId}.${ref.port}`,
        "data-direction": ref.direction,
        "data-type": typeName(ref.type),
      },
      svg("rect", { class: "hit", x: hitX, y: y - PORT_ROW / 2, width: BOX_W / 2 + 6, height: PORT_ROW }),
      svg("circle", { cx: x, cy: y, r: 4 }),
      svg("text", { ...inside, y: y + 4 }, ref.port),
      svg("title", {}, `${ref.moduleId}.${ref.port} (${side}, ${typeName(ref.type)}${optional})`),
    );
    if (isPicked) group.setAttribute("aria-pressed", "true");
    if (editing !== null) action(group, `${side} ${ref.moduleId}.${ref.port}`, () => editing.pick(ref));
    return group;
  }

  private cable(
    cable: Cable,
    [x1, y1, x2, y2]: [number, number, number, number],
    into: { cables: SVGGElement; labels: SVGGElement; handles: SVGGElement },
    editing: GraphEditing | null,
  ): void {
    const bend = Math.max(30, (x2 - x1) / 2);
    const source = `${cable.fromModule}.${cable.fromPort}`;
    const target = `${cable.toModule}.${cable.toPort}`;
    const d = `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
    const title = svg("title", {}, `${source} → ${target}`);
    into.cables.append(svg("path", { class: "cable", d, "data-from": source, "data-to": target }, title));
    // The label sits on the cable's last stretch, just before the input it feeds; the whole
    // value (a bar or signal as text) is its tooltip.
    const at = { x: x2 - 6, y: y2 - 4, "text-anchor": "end" };
    const text = svg("text", { class: "probe", ...at, "data-port": source, "data-to": target });
    into.labels.append(text);
    this.labels.push({ port: source, text });
    if (editing === null) return;
    // Near the cable's start: its probe value is written along its end.
    const [mx, my] = onCurve([x1, y1], [x1 + bend, y1], [x2 - bend, y2], [x2, y2], HANDLE_AT);
    const handle = svg(
      "g",
      { class: "remove-cable", "data-from": source, "data-to": target },
      svg("circle", { cx: mx, cy: my, r: 7 }),
      svg("text", { x: mx, y: my + 4, "text-anchor": "middle" }, "×"),
      svg("title", {}, `remove the cable ${source} → ${target}`),
    );
    action(handle, `remove cable ${source} to ${target}`, () => editing.removeCable(cable));
    into.handles.append(handle);
  }

  /** The refusals, as notes over the graph at their port or module (HTML: long texts wrap). */
  private notes(notes: readonly Note[], geometry: Geometry, width: number, height: number): HTMLElement {
    const size = `width: ${width}px; height: ${height}px`;
    const layer = h("div", { id: "patch-refusals", class: "refusals", style: size });
    for (const note of notes) {
      const point = geometry.point(note.anchor);
      if (point === undefined) continue;
      const left = Math.max(0, Math.min(point.x - NOTE_W / 2, width - NOTE_W));
      layer.append(
        h(
          "div",
          {
            class: "refusal",
            role: "alert",
            "data-anchor": anchorKey(note.anchor),
            "data-field": note.field,
            style: `left: ${left}px; top: ${point.y + 8}px; width: ${NOTE_W}px`,
          },
          note.text,
        ),
      );
    }
    return layer;
  }

  private drawValues(): void {
    for (const { port, text } of this.labels) {
      const update = this.values.get(port);
      const shown = update === undefined ? "" : probeText(update);
      if (text.getAttribute("data-value") !== shown) {
        const full = update === undefined ? "" : fullText(update);
        text.replaceChildren(shown, svg("title", {}, full));
        text.setAttribute("data-value", shown);
      }
    }
  }
}
