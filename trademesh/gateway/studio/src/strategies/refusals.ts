// Where the detector's refusal of an edit shows on the graph: its field violation names a field of
// the request (`cable.to_port`, `cable`, `module_id`) or, for an activation, a subject of the patch
// (`e.signal`, `t`, `t.params.period`); with the request, that is a port or a module to pin the
// note to. A refused cable is never drawn (the detector did not accept it): its note sits at the
// input it would have fed, or at the output it started from when that end is what was wrong. Pure.
import type { Direction, Ports } from "./ports";

export type Anchor =
  | { kind: "port"; moduleId: string; port: string; direction: Direction }
  | { kind: "module"; moduleId: string };

/** A refusal pinned to a port or module: the violation's field and its description. */
export interface Note {
  anchor: Anchor;
  field: string;
  text: string;
}

export interface CableEnds {
  fromModule: string;
  fromPort: string;
  toModule: string;
  toPort: string;
}

/** A ConnectCable or DisconnectCable violation of `field` about `cable`. */
export function cableAnchor(field: string, cable: CableEnds): Anchor {
  if (field === "cable.from_module") return { kind: "module", moduleId: cable.fromModule };
  if (field === "cable.from_port") {
    return { kind: "port", moduleId: cable.fromModule, port: cable.fromPort, direction: "out" };
  }
  if (field === "cable.to_module") return { kind: "module", moduleId: cable.toModule };
  // `cable` (a cycle), `cable.to_port` (another type, an input taken, no such input), the rest.
  return { kind: "port", moduleId: cable.toModule, port: cable.toPort, direction: "in" };
}

/** An activation's reason (its PreconditionFailure subject): "e.signal" an input of e (an output
 * when e has no such input), "t" or "t.params..." module t; null when no module is named. */
export function subjectAnchor(subject: string, ports: (moduleId: string) => Ports | undefined): Anchor | null {
  const [moduleId = "", port] = subject.split(".", 2);
  const known = ports(moduleId);
  if (known === undefined) return null;
  if (port !== undefined && known.inputs.some((p) => p.name === port)) {
    return { kind: "port", moduleId, port, direction: "in" };
  }
  if (port !== undefined && known.outputs.some((p) => p.name === port)) {
    return { kind: "port", moduleId, port, direction: "out" };
  }
  return { kind: "module", moduleId };
}

/** The key a drawn port or module is found by: "in:e.signal", "out:a.value", "module:t". */
export function anchorKey(anchor: Anchor): string {
  if (anchor.kind === "module") return `module:${anchor.moduleId}`;
  return `${anchor.direction}:${anchor.moduleId}.${anchor.port}`;
}

/** The first free id for a new module of `type`: the type's name, else name_2, name_3... */
export function freeModuleId(type: string, taken: readonly string[]): string {
  const base = /^[A-Za-z_]\w*$/.test(type) ? type : "module";
  if (!taken.includes(base)) return base;
  for (let n = 2; ; n += 1) if (!taken.includes(`${base}_${n}`)) return `${base}_${n}`;
}
