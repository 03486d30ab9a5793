// While a pointer is pressed on the page, what redraws on data (dom.throttled: the book ladder,
// the tape, open orders, fills, the patches, the decisions...) holds still: a redraw asked for
// meanwhile waits for the release. A row re-made or moved between a press and its release loses
// the click: the release lands on another element and the browser clicks neither (a book level
// on a busy book; in chromium tests, an order's trace and a patch's link). A press on a form
// field (its own popup may take the release) or on a chart (a drag pans it, its markers follow)
// holds nothing.
const HOLDS_NOTHING = "input, select, textarea, .chart";

let pressed = false;
const waiting = new Set<() => void>();

/** Runs `run` now, or after the pointer pressed on the page is released. */
export function afterRelease(run: () => void): void {
  if (pressed) waiting.add(run);
  else run();
}

function press(event: PointerEvent): void {
  if (!event.isPrimary || event.button !== 0) return;
  const target = event.target;
  if (target instanceof Element && target.closest(HOLDS_NOTHING) !== null) return;
  pressed = true;
}

function release(): void {
  if (!pressed) return;
  pressed = false;
  // The release's pointerup, mouseup and click are one task: the next frame comes after the click.
  requestAnimationFrame(() => {
    if (pressed) return; // pressed again since: held until that release
    const due = [...waiting];
    waiting.clear();
    for (const run of due) run();
  });
}

/** Follows the page's presses (once, at start). */
export function holdWhilePressed(): void {
  window.addEventListener("pointerdown", press, { capture: true });
  window.addEventListener("pointerup", release, { capture: true });
  window.addEventListener("pointercancel", release, { capture: true });
  // The window losing focus may take the release with it (not an element's blur: a press moves focus).
  window.addEventListener("blur", (event) => event.target === window && release());
  document.addEventListener("visibilitychange", release);
}
