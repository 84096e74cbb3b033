/**
 * The types shared by the hook registry: the hook map and its contexts, handlers, plugins,
 * policies, failures and emit results.
 *
 * @module
 */
import type { HookError } from "./hook_error.ts";

/**
 * Fields every hook context may carry. Custom contexts should extend it so that `signal`
 * and `deadline` keep their meaning.
 */
export interface HookContext {
  /** The agent the event concerns. */
  agentId?: string;
  /** Why the event happens, free text for logs (e.g. `"nightly"`, `"user request"`). */
  reason?: string;
  /**
   * Cancels the emit. When it aborts, the running handler's own signal aborts, no further
   * handler starts, and `emit()` rejects with the signal's reason.
   */
  signal?: AbortSignal;
  /**
   * Absolute deadline in epoch milliseconds (`Date.now()` clock). The emit's deadline is the
   * earlier of this and the hook policy's `deadlineMs`.
   */
  deadline?: number;
}

/** Context of `pre-dream`: the agent is about to consolidate ("dream" over) its memory. */
export interface PreDreamContext extends HookContext {
  /** Identifies the dream, if the runtime names them. */
  dreamId?: string;
}

/** Context of `post-dream`: the dream finished, successfully or not. */
export interface PostDreamContext extends HookContext {
  /** Identifies the dream, if the runtime names them. */
  dreamId?: string;
  /** Whether the dream succeeded. */
  succeeded: boolean;
  /** The error the dream failed with, when `succeeded` is false. */
  error?: unknown;
}

/** Context of `pre-restore`: a snapshot is about to replace the agent's live memory. */
export interface PreRestoreContext extends HookContext {
  /** Id of the snapshot being restored. */
  snapshotId: string;
}

/** Context of `post-restore`: the restore finished, successfully or not. */
export interface PostRestoreContext extends HookContext {
  /** Id of the snapshot that was restored. */
  snapshotId: string;
  /** Whether the restore succeeded (false: the live memory was rolled back). */
  succeeded: boolean;
  /** The error the restore failed with, when `succeeded` is false. */
  error?: unknown;
}

/** Context of `pre-compaction`: the runtime is about to compact the agent's working context. */
export interface PreCompactionContext extends HookContext {
  /** The session whose context is compacted, if the runtime has sessions. */
  sessionId?: string;
  /** Size of the context before compaction, in tokens, if known. */
  tokens?: number;
}

/** Context of `shutdown`: the process is stopping. */
export interface ShutdownContext extends HookContext {
  /** The OS signal that triggered the shutdown (`"SIGINT"`, `"SIGTERM"`), if any. */
  signalName?: string;
  /** Absolute deadline in epoch milliseconds; handlers still running then are abandoned. */
  deadline: number;
}

/** Context of `scheduled`: a timer or cron entry of the runtime fired. */
export interface ScheduledContext extends HookContext {
  /** Name of the schedule entry, e.g. `"nightly-snapshot"`. */
  job: string;
  /** When the entry was due, epoch milliseconds. */
  scheduledAt?: number;
}

/**
 * The built-in hooks, each name mapped to its context type. A runtime declares its own hooks
 * by extending this interface and passing the extension to `createHooks<MyHooks>()`.
 *
 * @example Declaring a runtime's own hook
 * ```ts
 * import type { BuiltinHooks, HookContext } from "@memsnap/core/hooks";
 *
 * interface TurnEndContext extends HookContext {
 *   turn: number;
 * }
 * interface MyHooks extends BuiltinHooks {
 *   "turn-end": TurnEndContext;
 * }
 * const ctx: MyHooks["turn-end"] = { turn: 3 };
 * console.log(ctx.turn);
 * ```
 */
export interface BuiltinHooks {
  /** Before the agent dreams. Best-effort: the dream goes on when a handler fails. */
  "pre-dream": PreDreamContext;
  /** After the agent dreamed. Best-effort. */
  "post-dream": PostDreamContext;
  /** Before a snapshot is restored. Fail-closed: the first failure aborts the restore. */
  "pre-restore": PreRestoreContext;
  /** After a restore. Best-effort. */
  "post-restore": PostRestoreContext;
  /** Before the runtime compacts the agent's context. Best-effort. */
  "pre-compaction": PreCompactionContext;
  /** The process stops. Handlers run last-in-first-out; every one runs; all failures reported. */
  shutdown: ShutdownContext;
  /** A schedule entry fired. Best-effort. */
  scheduled: ScheduledContext;
}

/** The name of a built-in hook. */
export type BuiltinHookName = keyof BuiltinHooks;

/** The names of a hook map `H` (its string keys). */
export type HookName<H> = keyof H & string;

/** The names of `H` that are not built in: the hooks a runtime declares itself. */
export type CustomHookName<H> = Exclude<HookName<H>, BuiltinHookName>;

/**
 * A hook handler. It receives the context and a signal that aborts when the handler's time is
 * up (its timeout, the emit's deadline, or the context's signal), so cooperative handlers can
 * stop. Throwing or rejecting is a failure; what a failure does depends on the hook's policy.
 */
export type HookHandler<C> = (context: C, signal: AbortSignal) => void | Promise<void>;

/** Where a handler runs relative to the others on the same hook. */
export type HookStage = "pre" | "post";

/** Options of {@linkcode HookApi.on}: everything but the plugin name, which the facade binds. */
export interface HandlerOptions {
  /**
   * Stage: `"pre"` handlers run before unstaged ones, `"post"` handlers after. Ties keep
   * registration order (reversed on LIFO hooks).
   *
   * @default {undefined}
   */
  order?: HookStage;
  /**
   * Plugin names this handler must run before. Wins over `order`. Names with no handler on
   * the hook are ignored; a cycle is refused at registration.
   *
   * @default {[]}
   */
  before?: readonly string[];
  /**
   * Milliseconds the handler may run before it counts as timed out.
   *
   * @default {the hook policy's `timeoutMs`}
   */
  timeout?: number;
  /** Unregisters the handler when it aborts. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Hooks.on}. */
export interface HookOptions extends HandlerOptions {
  /** Name of the plugin the handler belongs to; errors and results name it. */
  plugin: string;
}

/** How a hook behaves when a handler fails. */
export type FailureMode = "best-effort" | "fail-closed";

/**
 * The failure policy of one hook.
 *
 * - `best-effort`: every handler runs; failures are collected in the emit result.
 * - `fail-closed`: the first failure stops the emit and it rejects with a `HookError`.
 */
export interface HookPolicy {
  /** What a failure does. */
  failure: FailureMode;
  /** `"fifo"`: registration order; `"lifo"`: last registered runs first (teardown). */
  sequence: "fifo" | "lifo";
  /** Default per-handler timeout in milliseconds (a handler's `timeout` overrides it). */
  timeoutMs: number;
  /** Time budget of one whole emit in milliseconds; handlers not started by then are skipped. */
  deadlineMs: number;
}

/** The policy of a custom hook: `failure` is required, the rest defaults. */
export type HookDeclaration = Pick<HookPolicy, "failure"> & Partial<HookPolicy>;

/** Why a handler failed. */
export type HookFailureKind = "error" | "timeout" | "deadline";

/** One handler that failed during an emit. */
export interface HookFailure {
  /** The handler's plugin. */
  plugin: string;
  /** The hook being emitted. */
  hook: string;
  /**
   * `"error"`: it threw or rejected; `"timeout"`: it did not settle in time (it may still be
   * running; its signal was aborted); `"deadline"`: it never started, the emit's deadline had
   * passed.
   */
  kind: HookFailureKind;
  /** The error, naming plugin and hook; `cause` holds what the handler threw. */
  error: HookError;
}

/** What an emit did. */
export interface EmitResult<K extends string = string> {
  /** The hook emitted. */
  hook: K;
  /** Plugins whose handlers were started, in run order. */
  ran: string[];
  /** Handlers that failed (threw, timed out, or were cut by the deadline). */
  failures: HookFailure[];
  /** Plugins whose handlers timed out (also in `failures`). */
  timedOut: string[];
  /** Plugins whose handlers did not start (deadline passed, or a fail-closed hook stopped). */
  skipped: string[];
  /** Wall time of the emit in milliseconds. */
  durationMs: number;
}

/**
 * The registration half of a registry: safe to hand to plugins, it cannot emit. Every
 * handler registered through it belongs to {@linkcode HookApi.plugin}.
 */
export interface HookApi<H extends BuiltinHooks = BuiltinHooks> {
  /** The plugin this facade registers for. */
  readonly plugin: string;
  /** The hook names the registry accepts. */
  readonly names: readonly string[];
  /**
   * Registers a handler.
   *
   * @param name The hook.
   * @param handler The handler.
   * @param options Ordering, timeout and an unregistering signal.
   * @returns A function that unregisters the handler (idempotent).
   * @throws {HookError} `unknown_hook` for a name the registry does not accept; `order_cycle`
   * when `before` makes the order impossible.
   */
  on<K extends HookName<H>>(
    name: K,
    handler: HookHandler<H[K]>,
    options?: HandlerOptions,
  ): () => void;
}

/**
 * A plugin: a plain object whose `setup` registers handlers through a facade.
 *
 * @example A plugin
 * ```ts
 * import { createHooks, type HookPlugin } from "@memsnap/core/hooks";
 *
 * const audit: HookPlugin = {
 *   name: "audit",
 *   version: "1.0.0",
 *   setup(api) {
 *     api.on("pre-restore", (ctx) => console.log("restoring", ctx.snapshotId));
 *   },
 * };
 * const hooks = createHooks();
 * await hooks.register(audit);
 * await hooks.emit("pre-restore", { snapshotId: "s1" });
 * ```
 */
export interface HookPlugin<H extends BuiltinHooks = BuiltinHooks> {
  /** Unique name; handlers, errors and results carry it. */
  name: string;
  /** The plugin's version, for diagnostics. */
  version?: string;
  /** Names of plugins that must be registered before this one. */
  dependencies?: readonly string[];
  /**
   * Registers the plugin's handlers. If it throws, every handler it registered is removed.
   *
   * @param api A facade that can register but not emit.
   */
  setup(api: HookApi<H>): void | Promise<void>;
}

/** A registered plugin, as listed by {@linkcode Hooks.plugins}. */
export interface HookPluginInfo {
  /** The plugin's name. */
  name: string;
  /** The plugin's version, if it gave one. */
  version?: string;
}

/**
 * A typed hook registry, created by `createHooks()`. Each hook name maps to its context type
 * in `H`, so `emit()` and `on()` are checked from the name.
 */
export interface Hooks<H extends BuiltinHooks = BuiltinHooks> {
  /**
   * The hook names the registry accepts: the built-in ones, then the declared ones. Typed as
   * strings so that a runtime's `Hooks<MyHooks>` is assignable to plain `Hooks`.
   */
  readonly names: readonly string[];
  /**
   * Registers a handler for a plugin.
   *
   * @param name The hook.
   * @param handler The handler.
   * @param options The plugin name (required), ordering, timeout and an unregistering signal.
   * @returns A function that unregisters the handler (idempotent).
   * @throws {HookError} `unknown_hook` for a name the registry does not accept; `order_cycle`
   * when `before` makes the order impossible.
   * @throws {TypeError} When the plugin name is empty or an option is malformed.
   */
  on<K extends HookName<H>>(
    name: K,
    handler: HookHandler<H[K]>,
    options: HookOptions,
  ): () => void;
  /**
   * Runs the handlers of a hook in order, each within its timeout and the emit's deadline,
   * and reports what happened. Best-effort hooks always resolve; fail-closed hooks reject on
   * the first failure.
   *
   * @param name The hook.
   * @param context The context handed to every handler.
   * @returns What ran, what failed, what timed out, what was skipped.
   * @throws {HookError} `unknown_hook` for a name the registry does not accept;
   * `hook_failed` when a handler of a fail-closed hook fails (with every failure attached).
   * @throws {DOMException} The context signal's reason when it aborts.
   */
  emit<K extends HookName<H>>(name: K, context: H[K]): Promise<EmitResult<K>>;
  /**
   * Registers a plugin: checks its name and dependencies, then runs its `setup`.
   *
   * @param plugin The plugin.
   * @throws {HookError} `duplicate_plugin`, `missing_dependency`, or `plugin_setup_failed`.
   */
  register(plugin: HookPlugin<H>): Promise<void>;
  /**
   * A facade bound to a plugin name: it can register but not emit.
   *
   * @param plugin The plugin name handlers registered through it belong to.
   * @returns The facade.
   */
  api(plugin: string): HookApi<H>;
  /**
   * The effective policy of a hook (built-in default, declaration, then overrides).
   *
   * @param name The hook.
   * @returns A frozen copy of the policy.
   */
  policy(name: HookName<H>): Readonly<HookPolicy>;
  /**
   * The plugin names of a hook's handlers in the order an emit would run them.
   *
   * @param name The hook.
   * @returns Plugin names, one per handler.
   */
  order(name: HookName<H>): string[];
  /**
   * The registered plugins in registration order.
   *
   * @returns Name and version of each.
   */
  plugins(): HookPluginInfo[];
}
