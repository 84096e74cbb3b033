/**
 * Giving freed native memory back to the system during long operations (private).
 *
 * A snapshot or restore allocates and frees tens of thousands of native buffers (file contents,
 * decoded objects: V8 frees them when it collects their `ArrayBuffer`s). glibc's allocator keeps
 * the freed memory inside its arenas, so the process's resident memory stays at the high-water
 * mark: in a redacted 2 GiB snapshot the main arena held 71-73 MB at the peak, of which only
 * ~40-50 were live buffers. While an operation runs, `malloc_trim(0)` is called every
 * {@linkcode TRIM_INTERVAL_MS}: it returns the free pages of every arena. Measured on that
 * snapshot: peak RSS 229-245 MiB against 253-266 without, for 151 calls taking 227 ms in all
 * (at most 10 ms each).
 *
 * Only on Linux with glibc (`libc.so.6` has `malloc_trim`) and when FFI is granted; otherwise,
 * or with `MEMSNAP_MALLOC_TRIM=off`, nothing is done. It never asks for a permission.
 *
 * @module
 */
import { dlopenFirst, env, ffiGranted } from "./bundle/_env.ts";

/** How often the arenas are trimmed while an operation runs. */
export const TRIM_INTERVAL_MS = 500;

const SYMBOLS = {
  malloc_trim: { parameters: ["usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let trim: (() => void) | null | undefined;
let users = 0;
let timer: ReturnType<typeof setInterval> | undefined;

/** What trimming did, for tests: calls made so far. */
export const trimStats: { calls: number } = { calls: 0 };

/** The `malloc_trim(0)` call, or `null` where there is none (not glibc, no FFI, switched off). */
function trimmer(): (() => void) | null {
  if (trim !== undefined) return trim;
  trim = null;
  if (Deno.build.os !== "linux" || env("MEMSNAP_MALLOC_TRIM") === "off" || !ffiGranted()) {
    return trim;
  }
  // musl and others: no libc.so.6, or no malloc_trim in it
  trim = dlopenFirst(["libc.so.6"], SYMBOLS, (_path, lib) => () => {
    lib.symbols.malloc_trim(0n);
    trimStats.calls++;
  }) ?? null;
  return trim;
}

/**
 * Trims glibc's arenas every `intervalMs` until the returned function is called. Calls nest:
 * the timer runs while any caller has not stopped, and never keeps the process alive.
 */
export function startTrimming(intervalMs: number = TRIM_INTERVAL_MS): () => void {
  const t = trimmer();
  if (t === null) return () => {};
  if (users++ === 0) {
    const id = setInterval(t, intervalMs);
    Deno.unrefTimer(id);
    timer = id;
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    if (--users === 0) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/** Runs `fn` with the arenas trimmed meanwhile (see {@linkcode startTrimming}). */
export async function whileTrimming<T>(fn: () => Promise<T>): Promise<T> {
  const stop = startTrimming();
  try {
    return await fn();
  } finally {
    stop();
  }
}
