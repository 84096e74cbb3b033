/**
 * The hook registry behind `createHooks()`. Private to `hooks/`.
 *
 * @module
 */
import { HookError } from "./hook_error.ts";
import { OrderCycle, sortHandlers } from "./_order.ts";
import { ABORTED, FAILED, PENDING, SPINS, TIMED_OUT, Watch } from "./_settle.ts";
import type {
  BuiltinHooks,
  EmitResult,
  HandlerOptions,
  HookApi,
  HookContext,
  HookFailure,
  HookHandler,
  HookName,
  HookOptions,
  HookPlugin,
  HookPluginInfo,
  HookPolicy,
  Hooks,
} from "./types.ts";

/** One registered handler. */
interface Entry {
  readonly plugin: string;
  readonly stage: number;
  readonly seq: number;
  readonly before: readonly string[];
  readonly handler: HookHandler<unknown>;
  readonly timeout: number | undefined;
  active: boolean;
}

/** Per-hook state: policy, handlers, and the cached run order. */
interface HookState {
  readonly name: string;
  readonly policy: Readonly<HookPolicy>;
  readonly lifo: boolean;
  readonly failClosed: boolean;
  /** Active handlers in registration order. */
  readonly entries: Entry[];
  /** Run order, computed on demand and dropped whenever `entries` changes. */
  sorted: readonly Entry[] | undefined;
  /** How many entries have `before` constraints. */
  constrained: number;
}

const STAGES: Readonly<Record<string, number>> = { pre: 0, post: 2 };
const NOOP = (): void => {};

function quote(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(", ");
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Throws a TypeError unless `value` is a non-empty string. */
function checkName(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`Cannot register: ${what} must be a non-empty string`);
  }
}

/** A registry. Implements {@linkcode Hooks}; created only by `createHooks()`. */
export class HookRegistry<H extends BuiltinHooks> implements Hooks<H> {
  readonly names: readonly string[];
  #hooks: Map<string, HookState>;
  #plugins = new Map<string, HookPluginInfo>();
  #pending = new Set<string>();
  #seq = 0;
  #onHung: ((failure: HookFailure) => void) | undefined;

  constructor(
    policies: ReadonlyMap<string, Readonly<HookPolicy>>,
    onHung: ((failure: HookFailure) => void) | undefined,
  ) {
    this.#hooks = new Map();
    for (const [name, policy] of policies) {
      this.#hooks.set(name, {
        name,
        policy,
        lifo: policy.sequence === "lifo",
        failClosed: policy.failure === "fail-closed",
        entries: [],
        sorted: undefined,
        constrained: 0,
      });
    }
    this.names = Object.freeze([...policies.keys()]);
    this.#onHung = onHung;
  }

  #state(name: string, action: string, plugin?: string): HookState {
    const state = this.#hooks.get(name);
    if (state !== undefined) return state;
    throw new HookError("unknown_hook", `Cannot ${action} hook "${name}": unknown hook name`, {
      hook: name,
      ...(plugin === undefined ? {} : { plugin }),
      hint: `Known hooks: ${this.names.join(", ")}. A runtime declares its own hooks with ` +
        "createHooks<MyHooks>({ hooks: { name: { failure } } }).",
    });
  }

  #sorted(state: HookState): readonly Entry[] {
    return state.sorted ??= sortHandlers(state.entries, state.lifo);
  }

  on<K extends HookName<H>>(
    name: K,
    handler: HookHandler<H[K]>,
    options: HookOptions,
  ): () => void {
    if (options === null || typeof options !== "object") {
      throw new TypeError("Cannot register: options with a plugin name are required");
    }
    const { plugin, order, before = [], timeout, signal } = options;
    checkName(plugin, "the plugin name");
    const state = this.#state(name, "register a handler for", plugin);
    if (typeof handler !== "function") {
      throw new TypeError(
        `Cannot register on "${name}" for "${plugin}": handler is not a function`,
      );
    }
    if (order !== undefined && order !== "pre" && order !== "post") {
      throw new TypeError(
        `Cannot register on "${name}" for "${plugin}": order must be "pre" or "post"`,
      );
    }
    if (!Array.isArray(before) || before.some((b) => typeof b !== "string")) {
      throw new TypeError(
        `Cannot register on "${name}" for "${plugin}": before must be an array of plugin names`,
      );
    }
    if (timeout !== undefined && !(typeof timeout === "number" && timeout > 0)) {
      throw new RangeError(
        `Cannot register on "${name}" for "${plugin}": timeout must be a positive number of ms`,
      );
    }
    if (signal?.aborted) return NOOP;

    const entry: Entry = {
      plugin,
      stage: order === undefined ? 1 : STAGES[order]!,
      seq: this.#seq++,
      before: Object.freeze([...before]),
      handler: handler as HookHandler<unknown>,
      timeout,
      active: true,
    };
    state.entries.push(entry);
    state.sorted = undefined;
    if (entry.before.length > 0) state.constrained++;
    if (state.constrained > 0) {
      try {
        this.#sorted(state);
      } catch (error) {
        this.#remove(state, entry);
        if (!(error instanceof OrderCycle)) throw error;
        throw new HookError(
          "order_cycle",
          `Cannot register on "${name}" for "${plugin}": ${error.message}`,
          { plugin, hook: name, hint: "Remove one of the conflicting `before` constraints." },
        );
      }
    }

    const off = (): void => {
      if (!entry.active) return;
      this.#remove(state, entry);
      signal?.removeEventListener("abort", off);
    };
    signal?.addEventListener("abort", off, { once: true });
    return off;
  }

  #remove(state: HookState, entry: Entry): void {
    entry.active = false;
    const i = state.entries.indexOf(entry);
    if (i !== -1) state.entries.splice(i, 1);
    if (entry.before.length > 0) state.constrained--;
    state.sorted = undefined;
  }

  emit<K extends HookName<H>>(name: K, context: H[K]): Promise<EmitResult<K>> {
    const state = this.#hooks.get(name);
    if (state === undefined) {
      try {
        this.#state(name, "emit");
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const ctx = context as HookContext;
    const cancel = ctx?.signal;
    if (cancel?.aborted) return Promise.reject(cancel.reason);
    const list = this.#sorted(state!);
    if (list.length === 0) {
      return Promise.resolve({
        hook: name,
        ran: [],
        failures: [],
        timedOut: [],
        skipped: [],
        durationMs: 0,
      });
    }
    return this.#run(state!, list, name, context);
  }

  async #run<K extends string>(
    state: HookState,
    list: readonly Entry[],
    hook: K,
    context: unknown,
  ): Promise<EmitResult<K>> {
    const start = Date.now();
    const policy = state.policy;
    const ctx = context as HookContext;
    const cancel = ctx?.signal;
    const ctxDeadline = ctx?.deadline;
    const deadlineAt = typeof ctxDeadline === "number" && ctxDeadline < start + policy.deadlineMs
      ? ctxDeadline
      : start + policy.deadlineMs;
    const ran: string[] = [];
    const failures: HookFailure[] = [];
    const timedOut: string[] = [];
    const skipped: string[] = [];
    let deadlineHit = false;
    // The clock, read once per handler: after it ends, serving also as the next one's start.
    let now = start;

    for (let i = 0; i < list.length; i++) {
      const entry = list[i]!;
      if (!entry.active) continue;
      if (cancel?.aborted) throw cancel.reason;
      if (deadlineHit || now >= deadlineAt) {
        for (let j = i; j < list.length; j++) {
          const rest = list[j]!;
          if (!rest.active) continue;
          skipped.push(rest.plugin);
          failures.push({
            plugin: rest.plugin,
            hook,
            kind: "deadline",
            error: new HookError(
              "hook_deadline",
              `Cannot run hook "${hook}": plugin "${rest.plugin}" did not start before the ` +
                `emit's deadline`,
              { plugin: rest.plugin, hook },
            ),
          });
        }
        if (state.failClosed) throw this.#stopped(hook, failures, failures[0]!);
        break;
      }

      ran.push(entry.plugin);
      const own = entry.timeout ?? policy.timeoutMs;
      const byDeadline = now + own >= deadlineAt;
      const limitAt = byDeadline ? deadlineAt : now + own;
      const controller = new AbortController();
      let failure: HookFailure | undefined;
      let sync = true;
      try {
        const returned = entry.handler(context, controller.signal) as unknown;
        if (
          returned !== undefined && returned !== null &&
          typeof (returned as PromiseLike<unknown>).then === "function"
        ) {
          sync = false;
          const watch = new Watch(returned as PromiseLike<unknown>);
          // Yield a few microtasks before paying for a timer: most handlers settle by then.
          for (let s = 0; s < SPINS && watch.state === PENDING; s++) await undefined;
          if (watch.state === PENDING) await watch.wait(controller, limitAt, cancel);
          if (watch.state === FAILED) {
            failure = this.#threw(hook, entry.plugin, watch.error);
          } else if (watch.state === TIMED_OUT) {
            if (byDeadline) deadlineHit = true;
            timedOut.push(entry.plugin);
            failure = {
              plugin: entry.plugin,
              hook,
              kind: "timeout",
              error: new HookError(
                "hook_timeout",
                `Cannot run hook "${hook}": plugin "${entry.plugin}" did not settle ` +
                  (byDeadline ? "before the emit's deadline" : `within ${own} ms`),
                { plugin: entry.plugin, hook, cause: controller.signal.reason },
              ),
            };
            this.#reportHung(failure);
          } else if (watch.state === ABORTED) {
            throw cancel!.reason;
          }
        }
      } catch (error) {
        if (cancel?.aborted && error === cancel.reason) throw error;
        failure = this.#threw(hook, entry.plugin, error);
      }
      const began = now;
      now = Date.now();
      if (sync && failure === undefined && now > limitAt) {
        // A synchronous handler cannot be interrupted, but overrunning its limit is reported.
        if (byDeadline) deadlineHit = true;
        timedOut.push(entry.plugin);
        failure = {
          plugin: entry.plugin,
          hook,
          kind: "timeout",
          error: new HookError(
            "hook_timeout",
            `Cannot run hook "${hook}": plugin "${entry.plugin}" ran synchronously for ` +
              `${now - began} ms, past ` +
              (byDeadline ? "the emit's deadline" : `its limit of ${own} ms`),
            { plugin: entry.plugin, hook },
          ),
        };
      }
      if (failure !== undefined) {
        failures.push(failure);
        if (state.failClosed) {
          for (let j = i + 1; j < list.length; j++) {
            if (list[j]!.active) skipped.push(list[j]!.plugin);
          }
          throw this.#stopped(hook, failures, failure);
        }
      }
    }
    return { hook, ran, failures, timedOut, skipped, durationMs: now - start };
  }

  #threw(hook: string, plugin: string, error: unknown): HookFailure {
    return {
      plugin,
      hook,
      kind: "error",
      error: new HookError(
        "hook_failed",
        `Cannot run hook "${hook}": plugin "${plugin}" failed: ${messageOf(error)}`,
        { plugin, hook, cause: error },
      ),
    };
  }

  #stopped(hook: string, failures: HookFailure[], first: HookFailure): HookError {
    return new HookError(first.error.code, first.error.message, {
      plugin: first.plugin,
      hook,
      cause: first.error.cause,
      failures,
      hint: `"${hook}" is fail-closed: the first failing handler stops the operation.`,
    });
  }

  #reportHung(failure: HookFailure): void {
    if (this.#onHung === undefined) return;
    try {
      this.#onHung(failure);
    } catch {
      // A broken reporter must not break the emit.
    }
  }

  async register(plugin: HookPlugin<H>): Promise<void> {
    if (plugin === null || typeof plugin !== "object") {
      throw new TypeError("Cannot register the plugin: it is not an object");
    }
    const { name, version, dependencies = [] } = plugin;
    checkName(name, "the plugin name");
    if (typeof plugin.setup !== "function") {
      throw new TypeError(`Cannot register plugin "${name}": setup is not a function`);
    }
    if (this.#plugins.has(name) || this.#pending.has(name)) {
      throw new HookError(
        "duplicate_plugin",
        `Cannot register plugin "${name}": a plugin with this name is already registered`,
        { plugin: name, hint: "Plugin names must be unique within a registry." },
      );
    }
    const missing = dependencies.filter((d) => !this.#plugins.has(d));
    if (missing.length > 0) {
      throw new HookError(
        "missing_dependency",
        `Cannot register plugin "${name}": missing ${
          missing.length === 1 ? "dependency" : "dependencies"
        } ${quote(missing)}`,
        { plugin: name, hint: `Register ${quote(missing)} before "${name}".` },
      );
    }
    this.#pending.add(name);
    const offs: (() => void)[] = [];
    const api = this.#facade(name, offs);
    try {
      await plugin.setup(api);
    } catch (error) {
      for (let i = offs.length - 1; i >= 0; i--) offs[i]!();
      throw new HookError(
        "plugin_setup_failed",
        `Cannot register plugin "${name}": setup failed: ${messageOf(error)}`,
        { plugin: name, cause: error },
      );
    } finally {
      this.#pending.delete(name);
    }
    this.#plugins.set(name, version === undefined ? { name } : { name, version });
  }

  api(plugin: string): HookApi<H> {
    checkName(plugin, "the plugin name");
    return this.#facade(plugin, undefined);
  }

  #facade(plugin: string, offs: (() => void)[] | undefined): HookApi<H> {
    // Closures only: nothing on the facade leads back to the registry's emit.
    const on = <K extends HookName<H>>(
      name: K,
      handler: HookHandler<H[K]>,
      options?: HandlerOptions,
    ): () => void => {
      const off = this.on(name, handler, { ...options, plugin });
      offs?.push(off);
      return off;
    };
    return Object.freeze({ plugin, names: this.names, on });
  }

  policy(name: HookName<H>): Readonly<HookPolicy> {
    return this.#state(name, "read the policy of").policy;
  }

  order(name: HookName<H>): string[] {
    return this.#sorted(this.#state(name, "read the order of")).map((e) => e.plugin);
  }

  plugins(): HookPluginInfo[] {
    return [...this.#plugins.values()].map((p) => ({ ...p }));
  }
}
