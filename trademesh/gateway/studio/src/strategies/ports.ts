// A module's ports as the graph draws them: its type's from the catalog, inputs on the box's left
// edge and outputs on its right, in the catalog's order; for a type the catalog does not know (not
// loaded yet, or a detector newer than its answer), the ports its cables name. Pure.
import { type Cable, type ModuleType, PortType } from "../gen/trademesh/patch/v1/patch_pb";

export type Direction = "in" | "out";

export interface PortInfo {
  name: string;
  type: PortType;
  optional: boolean;
}

export interface Ports {
  inputs: PortInfo[];
  outputs: PortInfo[];
}

/** One port of one module of a patch. */
export interface PortRef {
  moduleId: string;
  port: string;
  direction: Direction;
  type: PortType;
}

function seen(cables: readonly Cable[], moduleId: string, direction: Direction): PortInfo[] {
  const names: PortInfo[] = [];
  for (const cable of cables) {
    const [module, port] =
      direction === "in" ? [cable.toModule, cable.toPort] : [cable.fromModule, cable.fromPort];
    if (module === moduleId && !names.some((p) => p.name === port)) {
      names.push({ name: port, type: cable.type, optional: false });
    }
  }
  return names;
}

/** The ports of module `moduleId` of type `type`. */
export function portsOf(
  moduleId: string,
  type: string,
  catalog: ReadonlyMap<string, ModuleType> | null,
  cables: readonly Cable[],
): Ports {
  const spec = catalog?.get(type);
  if (spec === undefined) return { inputs: seen(cables, moduleId, "in"), outputs: seen(cables, moduleId, "out") };
  const info = (p: { name: string; type: PortType; optional: boolean }): PortInfo => ({
    name: p.name,
    type: p.type,
    optional: p.optional,
  });
  return { inputs: spec.inputs.map(info), outputs: spec.outputs.map(info) };
}

/** "a.x": a port as the detector names it. */
export function portName(ref: { moduleId: string; port: string }): string {
  return `${ref.moduleId}.${ref.port}`;
}

/** A port type as words: "number", "boolean", ... */
export function typeName(type: PortType): string {
  return (PortType[type] ?? String(type)).toLowerCase();
}
