/**
 * {@linkcode createHooks}: creates a typed hook registry.
 *
 * @module
 */
import { HookError } from "./hook_error.ts";
import { HOOK_POLICIES } from "./policy.ts";
import { HookRegistry } from "./_registry.ts";
import type {
  BuiltinHooks,
  CustomHookName,
  HookDeclaration,
  HookFailure,
  HookName,
  HookPolicy,
  Hooks,
} from "./types.ts";

/** Options of {@linkcode createHooks}. */
export interface CreateHooksOptions<H extends BuiltinHooks = BuiltinHooks> {
  /**
   * The runtime list of the hooks `H` adds to the built-in ones, each with its policy
   * (`failure` required). Every custom name of `H` must appear; a name not listed here or
   * built in is refused at runtime with `unknown_hook`.
   */
  hooks: { readonly [K in CustomHookName<H>]: HookDeclaration };
  /**
   * Per-hook overrides of the policy, field by field, e.g.
   * `{ "pre-dream": { failure: "fail-closed" } }`.
   *
   * @default {{}}
   */
  policy?: { readonly [K in HookName<H>]?: Partial<HookPolicy> };
  /**
   * Called when a handler does not settle within its time limit (it is reported as a
   * `timeout` failure either way). The handler may still be running; its signal was aborted.
   */
  onHung?: (failure: HookFailure) => void;
}

/** Defaults of a custom hook's policy, besides its required `failure`. */
const CUSTOM_DEFAULTS = { sequence: "fifo", timeoutMs: 30_000, deadlineMs: 60_000 } as const;

function checkPolicy(name: string, policy: HookPolicy): Readonly<HookPolicy> {
  if (policy.failure !== "best-effort" && policy.failure !== "fail-closed") {
    throw new TypeError(
      `Cannot create the hook registry: hook "${name}" has failure "${policy.failure}", ` +
        `expected "best-effort" or "fail-closed"`,
    );
  }
  if (policy.sequence !== "fifo" && policy.sequence !== "lifo") {
    throw new TypeError(
      `Cannot create the hook registry: hook "${name}" has sequence "${policy.sequence}", ` +
        `expected "fifo" or "lifo"`,
    );
  }
  for (const field of ["timeoutMs", "deadlineMs"] as const) {
    const v = policy[field];
    if (typeof v !== "number" || !(v > 0)) {
      throw new RangeError(
        `Cannot create the hook registry: hook "${name}" has ${field} ${v}, expected a ` +
          "positive number",
      );
    }
  }
  return Object.freeze({
    failure: policy.failure,
    sequence: policy.sequence,
    timeoutMs: policy.timeoutMs,
    deadlineMs: policy.deadlineMs,
  });
}

/**
 * Creates a hook registry. Without a type argument it accepts the built-in hooks; a runtime
 * declares its own by extending {@linkcode BuiltinHooks} and listing the new names, each with
 * its failure policy, in `options.hooks`.
 *
 * @param options Custom hook declarations, policy overrides, and a hung-handler reporter.
 * @returns The registry.
 * @throws {TypeError} When a declaration redeclares a built-in hook or a policy is malformed.
 * @throws {RangeError} When a policy's time limits are not positive.
 * @throws {HookError} `unknown_hook` when `policy` names a hook that does not exist.
 *
 * @example Emitting a built-in hook
 * ```ts
 * import { createHooks } from "@memsnap/core/hooks";
 *
 * const hooks = createHooks();
 * hooks.on("pre-dream", async (ctx) => {
 *   console.log("snapshot before dreaming", ctx.agentId);
 * }, { plugin: "snapshot" });
 * const result = await hooks.emit("pre-dream", { agentId: "a1" });
 * console.log(result.ran, result.failures.length); // ["snapshot"] 0
 * ```
 *
 * @example Declaring a runtime's own hook
 * ```ts
 * import { type BuiltinHooks, createHooks, type HookContext } from "@memsnap/core/hooks";
 *
 * interface MyHooks extends BuiltinHooks {
 *   "turn-end": HookContext & { turn: number };
 * }
 * const hooks = createHooks<MyHooks>({
 *   hooks: { "turn-end": { failure: "best-effort", timeoutMs: 1_000 } },
 *   policy: { "pre-dream": { failure: "fail-closed" } },
 * });
 * hooks.on("turn-end", (ctx) => console.log("turn", ctx.turn), { plugin: "log" });
 * await hooks.emit("turn-end", { turn: 1 });
 * ```
 */
export function createHooks(
  options?: Partial<CreateHooksOptions<BuiltinHooks>>,
): Hooks<BuiltinHooks>;
/**
 * Creates a hook registry for a hook map `H` that extends the built-in hooks.
 *
 * @param options Custom hook declarations (required for `H`'s own names), policy overrides,
 * and a hung-handler reporter.
 * @returns The registry.
 */
export function createHooks<H extends BuiltinHooks>(options: CreateHooksOptions<H>): Hooks<H>;
export function createHooks<H extends BuiltinHooks>(
  options: Partial<CreateHooksOptions<H>> = {},
): Hooks<H> {
  const policies = new Map<string, Readonly<HookPolicy>>();
  for (const [name, policy] of Object.entries(HOOK_POLICIES)) policies.set(name, policy);
  const declared = (options.hooks ?? {}) as Record<string, HookDeclaration>;
  for (const [name, declaration] of Object.entries(declared)) {
    if (policies.has(name)) {
      throw new TypeError(
        `Cannot create the hook registry: hook "${name}" is built in; override its policy ` +
          "with options.policy instead",
      );
    }
    if (name.length === 0) {
      throw new TypeError("Cannot create the hook registry: a hook name is empty");
    }
    policies.set(name, checkPolicy(name, { ...CUSTOM_DEFAULTS, ...declaration }));
  }
  const overrides = (options.policy ?? {}) as Record<string, Partial<HookPolicy> | undefined>;
  for (const [name, override] of Object.entries(overrides)) {
    const base = policies.get(name);
    if (base === undefined) {
      throw new HookError(
        "unknown_hook",
        `Cannot override the policy of hook "${name}": unknown hook name`,
        { hook: name, hint: "Declare custom hooks in options.hooks." },
      );
    }
    if (override !== undefined) policies.set(name, checkPolicy(name, { ...base, ...override }));
  }
  return new HookRegistry<H>(policies, options.onHung);
}
