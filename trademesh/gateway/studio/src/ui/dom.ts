// A tiny element builder: Studio renders with plain DOM, no framework.
import { afterRelease } from "./press";

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

/** h("button", { class: "x", onclick: fn }, "text") */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  element.append(...present(children));
  return element;
}

function present(children: Child[]): (Node | string)[] {
  return children.filter((child): child is Node | string => child !== null && child !== undefined && child !== false);
}

/** Replaces an element's children. */
export function fill(element: Element, ...children: Child[]): void {
  element.replaceChildren(...present(children));
}

const SVG = "http://www.w3.org/2000/svg";

/** svg("rect", { x: 0, width: 10 }): an SVG element (diagrams: the patch graph, the reliability diagram). */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  ...children: (Node | string)[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** A table with a header row of `columns` over `body`. */
export function table(columns: readonly string[], body: HTMLElement): HTMLTableElement {
  return h("table", {}, h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", {}, c)))), body);
}

/** A panel: a titled section with a status line that loops update (see lib/loop). */
export function panel(title: string, id: string, ...children: Child[]): {
  root: HTMLElement;
  status: HTMLElement;
} {
  const status = h("span", { class: "status", "data-tone": "ok" });
  const root = h("section", { class: "panel", id }, h("header", {}, h("h2", {}, title), status), ...children);
  return { root, status };
}

/** Runs `draw` at most once per animation frame, however often it is asked for, and not while a
 * pointer is pressed on the page (ui/press: a redraw under the pointer loses the click). With
 * `everyMs`, also at most once in that time: a panel that follows a busy market (the book ladder,
 * the tape) is drawn at a rate one can read, not at every frame. */
export function throttled(draw: () => void, everyMs = 0): () => void {
  let queued = false;
  let last = -Infinity;
  const run = (): void => {
    queued = false;
    last = performance.now();
    draw();
  };
  const frame = (): void => {
    requestAnimationFrame(() => afterRelease(run));
  };
  return () => {
    if (queued) return;
    queued = true;
    const wait = last + everyMs - performance.now();
    if (wait > 0) setTimeout(frame, wait);
    else frame();
  };
}

/** Shows a loop's status (see lib/loop) in a panel's status line. */
export function showStatus(element: HTMLElement, status: { tone: string; text: string }): void {
  element.dataset.tone = status.tone;
  element.textContent = status.text;
}
