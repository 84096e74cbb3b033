/**
 * Emit overhead of the memsnap hook registry against unjs/hookable (the baseline), in the same
 * run: 0, 1 and 10 handlers, with async handlers (the common case: handlers do I/O) and with
 * sync handlers. Run: `deno bench -A bench/hooks_bench.ts`.
 *
 * The baseline is hookable's `createHooks()` (what its README shows; it wraps each call in
 * `console.createTask` for async stack traces); `HookableCore`, its bare variant, is listed too.
 * What is compared is what each library does per emit: hookable calls the handlers in series;
 * memsnap also sorts (cached), gives each handler an AbortSignal, enforces timeouts and the emit
 * deadline, catches and wraps failures, and returns a result.
 *
 * @module
 */
import { createHooks as createHookable, HookableCore } from "hookable";
import { createHooks } from "../hooks/mod.ts";

const ctx = { agentId: "a1" };

for (const n of [0, 1, 10]) {
  for (const kind of ["async", "sync"] as const) {
    if (n === 0 && kind === "sync") continue;
    const group = n === 0 ? "emit, 0 handlers" : `emit, ${n} ${kind} handler${n === 1 ? "" : "s"}`;
    let calls = 0;
    const handler = kind === "async"
      // An async handler on purpose: the bench measures emit awaiting a promise-returning handler.
      // deno-lint-ignore require-await
      ? async (): Promise<void> => {
        calls++;
      }
      : (): void => {
        calls++;
      };

    const hookable = createHookable<{ "pre-dream": (c: typeof ctx) => void | Promise<void> }>();
    const core = new HookableCore<{ "pre-dream": (c: typeof ctx) => void | Promise<void> }>();
    const hooks = createHooks();
    for (let i = 0; i < n; i++) {
      hookable.hook("pre-dream", handler);
      core.hook("pre-dream", handler);
      hooks.on("pre-dream", handler, { plugin: `p${i}` });
    }

    Deno.bench({
      name: `hookable callHook (${group})`,
      group,
      baseline: true,
      async fn() {
        await hookable.callHook("pre-dream", ctx);
      },
    });
    Deno.bench({
      name: `hookable HookableCore callHook (${group})`,
      group,
      async fn() {
        await core.callHook("pre-dream", ctx);
      },
    });
    Deno.bench({
      name: `memsnap emit (${group})`,
      group,
      async fn() {
        await hooks.emit("pre-dream", ctx);
      },
    });
    // Keeps `calls` observable so the handlers cannot be optimized away.
    if (calls < 0) console.log(calls);
  }
}
