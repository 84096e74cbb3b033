/**
 * A typed hook registry: an agent runtime emits lifecycle events (`pre-dream`, `pre-restore`,
 * `shutdown`, ...) and plugins register handlers for them. The registry knows nothing of
 * snapshots.
 *
 * - One interface, {@linkcode BuiltinHooks}, maps each hook name to its context type, so
 *   `emit("pre-restore", ctx)` is checked from the name. A runtime extends it with its own hooks
 *   and lists them at runtime; any other name is refused with code `unknown_hook`.
 * - Every handler belongs to a plugin. Order: stage (`order: "pre" | "post"`), then
 *   registration order (reversed on LIFO hooks); `before: [plugin]` wins over both.
 * - Every handler runs within a time limit (its `timeout`, or the hook's default, and the
 *   emit's deadline) and receives a signal that aborts when its time is up. A handler that never
 *   settles is reported as a `timeout` failure naming its plugin and hook, not awaited forever.
 * - Plugins are plain objects `{ name, version?, dependencies?, setup(api) }`; `api` registers
 *   but cannot emit.
 *
 * Failure policy per hook ({@linkcode HOOK_POLICIES}; a registry overrides it with
 * `createHooks({ policy })`):
 *
 * | hook             | failure     | sequence | timeoutMs | deadlineMs |
 * | ---------------- | ----------- | -------- | --------: | ---------: |
 * | `pre-dream`      | best-effort | fifo     |    60 000 |    120 000 |
 * | `post-dream`     | best-effort | fifo     |    30 000 |     60 000 |
 * | `pre-restore`    | fail-closed | fifo     |    60 000 |    300 000 |
 * | `post-restore`   | best-effort | fifo     |    30 000 |     60 000 |
 * | `pre-compaction` | best-effort | fifo     |    60 000 |    120 000 |
 * | `shutdown`       | best-effort | lifo     |     5 000 |     10 000 |
 * | `scheduled`      | best-effort | fifo     |    60 000 |    300 000 |
 * | custom           | declared    | fifo     |    30 000 |     60 000 |
 *
 * - best-effort: every handler runs; failures are reported in the emit result (`pre-dream`:
 *   the dream goes on). `shutdown` also runs last-in-first-out and reports every failure.
 * - fail-closed: the first failure stops the emit, which rejects with a {@linkcode HookError}
 *   carrying the failures (`pre-restore`: the restore is aborted).
 * - A handler's limit is its `timeout` (or the hook's `timeoutMs`), cut by the emit's deadline
 *   (`deadlineMs`, or the context's earlier `deadline`); handlers not started by the deadline
 *   are skipped and reported.
 *
 * @example Plugins, a fail-closed hook, and the emit result
 * ```ts
 * import { createHooks, HookError, type HookPlugin } from "@memsnap/core/hooks";
 *
 * const hooks = createHooks();
 * const snapshot: HookPlugin = {
 *   name: "snapshot",
 *   setup(api) {
 *     api.on("pre-dream", async (ctx, signal) => {
 *       signal.throwIfAborted();
 *       console.log("snapshot of", ctx.agentId);
 *     });
 *   },
 * };
 * const guard: HookPlugin = {
 *   name: "guard",
 *   dependencies: ["snapshot"],
 *   setup(api) {
 *     api.on("pre-restore", () => {
 *       throw new Error("agent is mid-turn");
 *     });
 *   },
 * };
 * await hooks.register(snapshot);
 * await hooks.register(guard);
 *
 * const result = await hooks.emit("pre-dream", { agentId: "a1" });
 * console.log(result.ran); // ["snapshot"]
 *
 * try {
 *   await hooks.emit("pre-restore", { snapshotId: "s1" });
 * } catch (e) {
 *   if (e instanceof HookError) console.log(e.code, e.plugin); // "hook_failed" "guard"
 * }
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./hook_error.ts";
export * from "./policy.ts";
export * from "./create_hooks.ts";
export * from "./shutdown_signals.ts";
