/**
 * {@linkcode HookError}: every error of the hook registry, naming the plugin and the hook.
 *
 * @module
 */
import { MemsnapError } from "../errors.ts";
import type { HookFailure } from "./types.ts";

/**
 * Stable machine-readable codes of {@linkcode HookError}.
 *
 * - `unknown_hook`: a hook name the registry does not accept.
 * - `hook_failed`: a handler threw or rejected (or, on a fail-closed emit, the emit stopped).
 * - `hook_timeout`: a handler did not settle within its timeout or the emit's deadline.
 * - `hook_deadline`: a handler never started because the emit's deadline had passed.
 * - `duplicate_plugin`: a plugin name is already registered.
 * - `missing_dependency`: a plugin's dependencies are not registered.
 * - `plugin_setup_failed`: a plugin's `setup()` threw.
 * - `order_cycle`: `before` constraints contradict each other.
 */
export type HookErrorCode =
  | "unknown_hook"
  | "hook_failed"
  | "hook_timeout"
  | "hook_deadline"
  | "duplicate_plugin"
  | "missing_dependency"
  | "plugin_setup_failed"
  | "order_cycle";

/** Options of the {@linkcode HookError} constructor. */
export interface HookErrorOptions {
  /** The plugin concerned, if any. */
  plugin?: string;
  /** The hook concerned, if any. */
  hook?: string;
  /** What the handler threw, or the underlying error. */
  cause?: unknown;
  /** Every failure, when the error stands for an emit that stopped. */
  failures?: readonly HookFailure[];
  /** A hint telling the user how to fix the problem. */
  hint?: string;
}

/**
 * An error of the hook registry. It names the plugin and the hook concerned; `cause` is what
 * the handler threw. A fail-closed emit rejects with one carrying every failure.
 *
 * @example Telling a fail-closed veto apart
 * ```ts
 * import { createHooks, HookError } from "@memsnap/core/hooks";
 *
 * const hooks = createHooks();
 * hooks.on("pre-restore", () => {
 *   throw new Error("agent is busy");
 * }, { plugin: "guard" });
 * try {
 *   await hooks.emit("pre-restore", { snapshotId: "s1" });
 * } catch (e) {
 *   if (e instanceof HookError) console.log(e.code, e.plugin, e.hook); // hook_failed guard pre-restore
 * }
 * ```
 */
export class HookError extends MemsnapError {
  /** Stable machine-readable code. */
  override readonly code: HookErrorCode;
  /** The plugin concerned, if any. */
  readonly plugin: string | undefined;
  /** The hook concerned, if any. */
  readonly hook: string | undefined;
  /** Every failure of the emit this error stands for (empty otherwise). */
  readonly failures: readonly HookFailure[];

  /**
   * Creates a hook error.
   *
   * @param code The stable code.
   * @param message The message, "Cannot <action>: <state>".
   * @param options Plugin, hook, cause, failures and a hint.
   */
  constructor(code: HookErrorCode, message: string, options: HookErrorOptions = {}) {
    super(message, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.hint === undefined ? {} : { hint: options.hint }),
    });
    this.code = code;
    this.plugin = options.plugin;
    this.hook = options.hook;
    this.failures = options.failures ?? [];
  }
}
