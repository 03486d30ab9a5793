// A patch drawn as SVG: modules as boxes (id, type, place in the evaluation order) in columns
// by cable depth, cables as curves from output to input, and on each cable its source port's
// latest probe value. The values are also kept in data attributes (data-value) for tests and
// tools; they are redrawn at most once per animation frame however fast probes arrive.
import type { Cable, PatchGraph, ProbeUpdate } from "../gen/trademesh/patch/v1/patch_pb";
import { layers, type Placed } from "../strategies/layout";
import { h, svg, throttled } from "./dom";

const BOX_W = 150;
const BOX_H = 44;
const GAP_X = 120;
const GAP_Y = 22;
const PAD = 16;
const LONGEST_TEXT = 14;
const PORT_GAP = 16;

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

/** Where each module's box is, and where each input port meets its left edge. */
class Geometry {
  readonly boxes = new Map<string, { x: number; y: number; height: number }>();
  readonly inputs = new Map<string, number>();
  width = 0;
  height = 0;

  constructor(placed: Map<string, Placed>, cables: readonly Cable[]) {
    const ports = new Map<string, string[]>();
    for (const cable of cables) {
      const list = ports.get(cable.toModule) ?? [];
      if (!list.includes(cable.toPort)) list.push(cable.toPort);
      ports.set(cable.toModule, list);
    }
    const columnY: number[] = [];
    const sorted = [...placed.values()].sort((a, b) => a.column - b.column || a.row - b.row);
    for (const place of sorted) {
      const inputs = ports.get(place.moduleId) ?? [];
      const height = Math.max(BOX_H, PORT_GAP * (inputs.length + 1));
      const x = PAD + place.column * (BOX_W + GAP_X);
      const y = columnY[place.column] ?? PAD;
      columnY[place.column] = y + height + GAP_Y;
      this.boxes.set(place.moduleId, { x, y, height });
      const step = height / (inputs.length + 1);
      inputs.forEach((port, i) => this.inputs.set(`${place.moduleId}.${port}`, y + step * (i + 1)));
      this.width = Math.max(this.width, x + BOX_W + PAD);
      this.height = Math.max(this.height, y + height + PAD);
    }
  }
}

export class PatchGraphView {
  readonly root = h("div", { class: "patch-graph" });
  private readonly values = new Map<string, ProbeUpdate>();
  private labels: { port: string; text: SVGTextElement }[] = [];
  private readonly redraw = throttled(() => this.drawValues());

  /** Draws the patch's modules and cables (values already known stay on their cables). */
  draw(patch: PatchGraph): void {
    const { placed } = layers(patch.evaluationOrder, patch.cables);
    const geometry = new Geometry(placed, patch.cables);
    const [width, height] = [Math.max(geometry.width, 200), Math.max(geometry.height, 60)];
    const root = svg("svg", { id: "patch-graph", width, height, viewBox: `0 0 ${width} ${height}` });
    const types = new Map(patch.modules.map((m) => [m.moduleId, m.type]));
    const cables = svg("g", { class: "cables" });
    const labels = svg("g", { class: "probes" });
    this.labels = [];
    for (const cable of patch.cables) {
      const from = geometry.boxes.get(cable.fromModule);
      const to = geometry.boxes.get(cable.toModule);
      const y2 = geometry.inputs.get(`${cable.toModule}.${cable.toPort}`);
      if (from !== undefined && to !== undefined && y2 !== undefined) {
        this.cable(cable, [from.x + BOX_W, from.y + from.height / 2, to.x, y2], cables, labels);
      }
    }
    const modules = svg("g", { class: "modules" });
    patch.evaluationOrder.forEach((id, index) => {
      const box = geometry.boxes.get(id);
      if (box === undefined) return;
      const failed = patch.error?.moduleId === id;
      modules.append(this.box(id, types.get(id) ?? "?", index + 1, box, failed));
    });
    root.append(cables, modules, labels);
    this.root.replaceChildren(root);
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
    { x, y, height }: { x: number; y: number; height: number },
    failed: boolean,
  ): SVGGElement {
    return svg(
      "g",
      { class: failed ? "module errored" : "module", "data-module-id": id, "data-type": type, "data-order": order },
      svg("rect", { x, y, width: BOX_W, height, rx: 5 }),
      svg("text", { class: "id", x: x + 8, y: y + 18 }, id),
      svg("text", { class: "type", x: x + 8, y: y + 35 }, type),
      svg("text", { class: "order", x: x + BOX_W - 8, y: y + 18, "text-anchor": "end" }, `#${order}`),
    );
  }

  private cable(
    cable: Cable,
    [x1, y1, x2, y2]: [number, number, number, number],
    cables: SVGGElement,
    labels: SVGGElement,
  ): void {
    const bend = Math.max(30, (x2 - x1) / 2);
    const source = `${cable.fromModule}.${cable.fromPort}`;
    const target = `${cable.toModule}.${cable.toPort}`;
    const d = `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
    const title = svg("title", {}, `${source} → ${target}`);
    cables.append(svg("path", { class: "cable", d, "data-from": source, "data-to": target }, title));
    // The label sits on the cable's last stretch, just before the input it feeds; the whole
    // value (a bar or signal as text) is its tooltip.
    const at = { x: x2 - 6, y: y2 - 4, "text-anchor": "end" };
    const text = svg("text", { class: "probe", ...at, "data-port": source, "data-to": target });
    labels.append(text);
    this.labels.push({ port: source, text });
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
