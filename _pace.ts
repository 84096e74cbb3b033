/**
 * Pacing of long synchronous loops (private).
 *
 * @module
 */

/** How long synchronous work may hold the thread before it lets other tasks run: 16 ms. */
const SLICE_MS = 16;

/**
 * A pacer for long synchronous loops: `pace()` returns a promise (a `setImmediate`, which lets
 * pending I/O complete) once the caller has run for {@linkcode SLICE_MS} since the last one,
 * else `undefined`. Plugins capture concurrently, and memsnap runs inside agent runtimes:
 * without it, a sync loop over thousands of objects or rows would stall the other plugins'
 * I/O and the runtime's own tasks for its whole length.
 */
export function pacer(): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < SLICE_MS) return undefined;
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        last = performance.now();
        resolve();
      })
    );
  };
}
