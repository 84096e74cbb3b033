/**
 * {@linkcode installShutdownSignals}: runs the `shutdown` hook on SIGINT/SIGTERM, then exits.
 *
 * @module
 */
import type { BuiltinHooks, EmitResult, Hooks, ShutdownContext } from "./types.ts";

/** Options of {@linkcode installShutdownSignals}. */
export interface ShutdownSignalsOptions {
  /** Milliseconds the `shutdown` handlers have, all together, from the signal on. */
  deadlineMs: number;
  /**
   * Ends the process with a code: 0 when every handler succeeded, 1 otherwise, 130 on a
   * second signal.
   *
   * @default {Deno.exit}
   */
  exit?: (code: number) => void;
  /**
   * The signals to handle.
   *
   * @default {["SIGINT", "SIGTERM"] (["SIGINT"] on Windows)}
   */
  signals?: readonly Deno.Signal[];
  /**
   * Extra context fields for the `shutdown` emit (e.g. `agentId`). `signalName` and
   * `deadline` are set by the helper.
   */
  context?: Omit<ShutdownContext, "signalName" | "deadline">;
  /** Receives the emit's result (or its error) before the process exits, e.g. to log it. */
  onResult?: (result: EmitResult<"shutdown"> | undefined, error?: unknown) => void;
}

/** Extra time after the deadline before the process exits regardless. */
const GRACE_MS = 1_000;

/**
 * Installs OS signal listeners that run the registry's `shutdown` hook: on the first signal it
 * emits `shutdown` with the signal name and a deadline `deadlineMs` away, then exits with 0
 * when every handler succeeded and 1 otherwise. A second signal exits at once with 130.
 *
 * @param hooks The registry whose `shutdown` hook runs.
 * @param options The deadline, the exit function, the signals.
 * @returns A disposer removing the listeners (idempotent).
 * @throws {RangeError} When `deadlineMs` is not a positive number.
 *
 * @example Graceful shutdown of a runtime
 * ```ts
 * import { createHooks, installShutdownSignals } from "@memsnap/core/hooks";
 *
 * const hooks = createHooks();
 * hooks.on("shutdown", async (ctx) => {
 *   console.log("flushing before", new Date(ctx.deadline).toISOString());
 * }, { plugin: "store" });
 * const dispose = installShutdownSignals(hooks, { deadlineMs: 5_000 });
 * // ... the runtime runs; on SIGTERM the handlers run, then the process exits ...
 * dispose();
 * ```
 */
export function installShutdownSignals<H extends BuiltinHooks>(
  hooks: Pick<Hooks<H>, "emit">,
  options: ShutdownSignalsOptions,
): () => void {
  const { deadlineMs, exit = Deno.exit, context = {}, onResult } = options;
  if (typeof deadlineMs !== "number" || !(deadlineMs > 0)) {
    throw new RangeError(
      `Cannot install shutdown signals: deadlineMs must be a positive number, got ${deadlineMs}`,
    );
  }
  const signals = options.signals ??
    (Deno.build.os === "windows" ? ["SIGINT"] as const : ["SIGINT", "SIGTERM"] as const);
  let shuttingDown = false;
  let disposed = false;

  const shutdown = async (signalName: Deno.Signal): Promise<void> => {
    const deadline = Date.now() + deadlineMs;
    // A backstop in case a handler blocks the emit from ever settling.
    const backstop = setTimeout(() => exit(1), deadlineMs + GRACE_MS);
    let code = 1;
    try {
      const ctx = { ...context, signalName, deadline } as H["shutdown"];
      const result = await hooks.emit("shutdown", ctx);
      code = result.failures.length === 0 ? 0 : 1;
      onResult?.(result);
    } catch (error) {
      onResult?.(undefined, error);
    } finally {
      clearTimeout(backstop);
    }
    exit(code);
  };

  const listeners = signals.map((signal) => {
    const listener = (): void => {
      if (shuttingDown) {
        exit(130);
        return;
      }
      shuttingDown = true;
      void shutdown(signal);
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });

  return (): void => {
    if (disposed) return;
    disposed = true;
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  };
}
