// A layered layout of a patch's graph: a module's column is the longest cable path from a
// module with no input cable (sources in column 0), so every cable runs left to right; within a
// column, modules keep their evaluation order. Pure: ids and cables in, positions out.

export interface CableEnds {
  fromModule: string;
  toModule: string;
}

export interface Placed {
  moduleId: string;
  column: number;
  row: number;
}

export interface Layout {
  placed: Map<string, Placed>;
  columns: number;
  rows: number;
}

/** Columns by longest path, walking `order` (a topological order: the evaluation order). */
export function layers(order: readonly string[], cables: readonly CableEnds[]): Layout {
  const column = new Map<string, number>(order.map((id) => [id, 0]));
  for (const id of order) {
    const at = column.get(id) ?? 0;
    for (const cable of cables) {
      if (cable.fromModule === id && column.has(cable.toModule)) {
        column.set(cable.toModule, Math.max(column.get(cable.toModule) ?? 0, at + 1));
      }
    }
  }
  const placed = new Map<string, Placed>();
  const filled: number[] = [];
  for (const id of order) {
    const c = column.get(id) ?? 0;
    const row = filled[c] ?? 0;
    filled[c] = row + 1;
    placed.set(id, { moduleId: id, column: c, row });
  }
  return { placed, columns: filled.length, rows: Math.max(0, ...filled.map((n) => n ?? 0)) };
}
