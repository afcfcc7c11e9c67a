/**
 * What the benchmark runs: scenarios, shapes (connections x pipeline) and
 * the order of the cells. Pure.
 *
 * @module
 */

/**
 * `echo`: the echo of a small payload; `work`: a CPU-bound method (`spin`);
 * `mixed`: echoes with a share of slow `spin` requests among them.
 */
export type Scenario = "echo" | "work" | "mixed";

/** Connections and requests in flight per connection. */
export interface Shape {
  connections: number;
  pipeline: number;
}

/**
 * Parses `CONNECTIONSxPIPELINE` items, comma-separated, e.g. `1x1,16x8`.
 *
 * @throws {SyntaxError} On an item of another form.
 */
export function parseShapes(list: string): Shape[] {
  return list.split(",").map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
      throw new SyntaxError(
        `Cannot parse shape "${s}": expected CONNECTIONSxPIPELINE, e.g. 16x8`,
      );
    }
    return { connections: Number(m[1]), pipeline: Number(m[2]) };
  });
}

/** `16 x 8`. */
export function shapeLabel(shape: Shape): string {
  return `${shape.connections} x ${shape.pipeline}`;
}

/** True when both have the same connections and pipeline. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.connections === b.connections && a.pipeline === b.pipeline;
}

/**
 * `items` starting at `round` (mod length): the targets' order for a round,
 * so that no target always runs first or right after the same one.
 */
export function rotate<T>(items: readonly T[], round: number): T[] {
  return items.map((_, i) => items[(i + round) % items.length]!);
}
