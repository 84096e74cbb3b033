/**
 * Sorting of a hook's handlers: stage, then registration order (reversed for LIFO hooks),
 * with `before` constraints winning over both: a handler with `before` runs just ahead of the
 * first handler it names. Private to `hooks/`.
 *
 * @module
 */

/** What the sort needs of a registered handler. */
export interface Orderable {
  /** The plugin name. */
  readonly plugin: string;
  /** 0 for `"pre"`, 1 unstaged, 2 for `"post"`. */
  readonly stage: number;
  /** Registration sequence number, unique and increasing. */
  readonly seq: number;
  /** Plugins this handler must precede. */
  readonly before: readonly string[];
}

/** A `before` cycle: the plugins involved. */
export class OrderCycle extends Error {
  /** The plugins whose handlers could not be ordered. */
  readonly plugins: string[];

  /**
   * Creates the error.
   *
   * @param plugins The plugins involved.
   */
  constructor(plugins: string[]) {
    super(`before constraints form a cycle among ${plugins.map((p) => `"${p}"`).join(", ")}`);
    this.plugins = plugins;
  }
}

/**
 * Sorts handlers into run order.
 *
 * @param entries The handlers in registration order.
 * @param lifo Whether ties run last-registered first.
 * @returns A new array in run order.
 * @throws {OrderCycle} When `before` constraints contradict each other.
 */
export function sortHandlers<T extends Orderable>(entries: readonly T[], lifo: boolean): T[] {
  const cmp = lifo
    ? (a: T, b: T): number => a.stage - b.stage || b.seq - a.seq
    : (a: T, b: T): number => a.stage - b.stage || a.seq - b.seq;
  const sorted = entries.slice().sort(cmp);
  if (!sorted.some((e) => e.before.length > 0)) return sorted;

  // Depth-first: walking in `cmp` order, each handler is preceded by the handlers that must
  // run before it (pulled forward, themselves in `cmp` order). A handler without constraints
  // keeps its place; one with `before` moves to just ahead of its first target.
  const n = sorted.length;
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    const from = sorted[i]!;
    if (from.before.length === 0) continue;
    for (let j = 0; j < n; j++) {
      const to = sorted[j]!;
      if (to.plugin !== from.plugin && from.before.includes(to.plugin)) preds[j]!.push(i);
    }
  }
  const state = new Uint8Array(n); // 0 new, 1 visiting, 2 done
  const out: T[] = [];
  const path: number[] = [];
  const visit = (i: number): void => {
    if (state[i] === 2) return;
    if (state[i] === 1) {
      const cycle = path.slice(path.indexOf(i)).map((k) => sorted[k]!.plugin);
      throw new OrderCycle([...new Set(cycle)]);
    }
    state[i] = 1;
    path.push(i);
    for (const p of preds[i]!) visit(p);
    path.pop();
    state[i] = 2;
    out.push(sorted[i]!);
  };
  for (let i = 0; i < n; i++) visit(i);
  return out;
}
