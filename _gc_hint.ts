/**
 * A full garbage collection where a phase of a long operation ends (private).
 *
 * A restore goes through phases that each make and drop a large set of objects: the plugins'
 * plans, then each plugin's artifact entries (200,000 of them for a memory of 200,000 notes).
 * V8 collects the old generation when it reaches a limit set from what was live at the last
 * collection; a phase's dropped objects then stay until the next phase has grown the heap
 * past that limit, and whether a collection falls between two phases decided 20-40 MiB of a
 * 200,000-note restore's peak from one run to the next. Where a phase ends with a large heap,
 * {@linkcode phaseEnded} collects it at once.
 *
 * Only when the runtime exposes `gc` (the `memsnap` task runs Deno with `--expose-gc`), the
 * heap holds at least {@linkcode GC_HINT_MIN_BYTES}, and `MEMSNAP_GC_HINTS` is not `off`: a
 * small operation never pays for a collection (~1 ms per 10 MB of live heap).
 *
 * @module
 */
import { env } from "./bundle/_env.ts";

/** Heap (used, live or not) under which a phase's end collects nothing. */
export const GC_HINT_MIN_BYTES = 48 << 20;

/** What the hints did, for tests: collections asked for so far. */
export const gcHintStats: { collections: number } = { collections: 0 };

let enabled: boolean | undefined;

/**
 * Collects the heap if it is large and the runtime allows it (see the module doc). `heapUsed`
 * is the heap's size in use (for tests; the runtime's figure by default).
 */
export function phaseEnded(heapUsed?: number): void {
  enabled ??= env("MEMSNAP_GC_HINTS") !== "off";
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!enabled || typeof gc !== "function") return;
  if ((heapUsed ?? Deno.memoryUsage().heapUsed) < GC_HINT_MIN_BYTES) return;
  gc();
  gcHintStats.collections++;
}
