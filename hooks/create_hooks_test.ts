import assert from "node:assert/strict";
import { createHooks } from "./create_hooks.ts";
import { HookError } from "./hook_error.ts";
import type { BuiltinHooks, HookContext, HookFailure, HookPlugin } from "./types.ts";

/** A promise that never settles. */
function hang(): Promise<void> {
  return new Promise<void>(() => {});
}

Deno.test("createHooks() emit() with no handlers resolves an empty result", async () => {
  const hooks = createHooks();
  const result = await hooks.emit("pre-dream", {});
  assert.deepEqual(result, {
    hook: "pre-dream",
    ran: [],
    failures: [],
    timedOut: [],
    skipped: [],
    durationMs: 0,
  });
});

Deno.test("createHooks() lists the built-in hooks in table order", () => {
  assert.deepEqual(createHooks().names, [
    "pre-dream",
    "post-dream",
    "pre-restore",
    "post-restore",
    "pre-compaction",
    "shutdown",
    "scheduled",
  ]);
});

Deno.test("on() orders handlers by stage, then registration order", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  const add = (plugin: string, order?: "pre" | "post"): void => {
    hooks.on("pre-dream", () => {
      seen.push(plugin);
    }, order === undefined ? { plugin } : { plugin, order });
  };
  add("a");
  add("late", "post");
  add("b");
  add("first", "pre");
  add("c");
  add("first2", "pre");
  assert.deepEqual(hooks.order("pre-dream"), ["first", "first2", "a", "b", "c", "late"]);
  const result = await hooks.emit("pre-dream", {});
  assert.deepEqual(seen, ["first", "first2", "a", "b", "c", "late"]);
  assert.deepEqual(result.ran, seen);
});

Deno.test("on() before wins over stage and registration order", () => {
  const hooks = createHooks();
  const noop = (): void => {};
  hooks.on("pre-dream", noop, { plugin: "a", order: "pre" });
  hooks.on("pre-dream", noop, { plugin: "b" });
  hooks.on("pre-dream", noop, { plugin: "c", order: "post", before: ["a"] });
  hooks.on("pre-dream", noop, { plugin: "d", before: ["b", "absent"] });
  assert.deepEqual(hooks.order("pre-dream"), ["c", "a", "d", "b"]);
});

Deno.test("on() before applies to every handler of the named plugin", () => {
  const hooks = createHooks();
  const noop = (): void => {};
  hooks.on("post-dream", noop, { plugin: "x" });
  hooks.on("post-dream", noop, { plugin: "y" });
  hooks.on("post-dream", noop, { plugin: "x" });
  hooks.on("post-dream", noop, { plugin: "z", before: ["x"] });
  assert.deepEqual(hooks.order("post-dream"), ["z", "x", "y", "x"]);
});

Deno.test("on() refuses a before cycle with order_cycle and keeps the registry usable", () => {
  const hooks = createHooks();
  const noop = (): void => {};
  hooks.on("pre-dream", noop, { plugin: "a", before: ["b"] });
  hooks.on("pre-dream", noop, { plugin: "c" });
  assert.throws(
    () => hooks.on("pre-dream", noop, { plugin: "b", before: ["a"] }),
    (e: unknown) =>
      e instanceof HookError && e.code === "order_cycle" && e.plugin === "b" &&
      e.hook === "pre-dream" && /"a"/.test(e.message) && /"b"/.test(e.message),
  );
  assert.deepEqual(hooks.order("pre-dream"), ["a", "c"]);
});

Deno.test("order() recomputes after registration changes", () => {
  const hooks = createHooks();
  const noop = (): void => {};
  hooks.on("scheduled", noop, { plugin: "a" });
  assert.deepEqual(hooks.order("scheduled"), ["a"]);
  const off = hooks.on("scheduled", noop, { plugin: "b", order: "pre" });
  assert.deepEqual(hooks.order("scheduled"), ["b", "a"]);
  off();
  assert.deepEqual(hooks.order("scheduled"), ["a"]);
});

Deno.test("on() runs shutdown handlers last-in-first-out, stages and before still apply", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  const add = (plugin: string, extra: { order?: "pre" | "post"; before?: string[] } = {}) =>
    hooks.on("shutdown", () => {
      seen.push(plugin);
    }, { plugin, ...extra });
  add("store");
  add("capture");
  add("runtime");
  add("logger", { order: "post" });
  add("flush", { order: "pre" });
  add("early", { before: ["runtime"] });
  await hooks.emit("shutdown", { deadline: Date.now() + 60_000 });
  assert.deepEqual(seen, ["flush", "early", "runtime", "capture", "store", "logger"]);
});

Deno.test("on() returns an idempotent unregister function", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  const off = hooks.on("post-dream", () => {
    seen.push("a");
  }, { plugin: "a" });
  hooks.on("post-dream", () => {
    seen.push("b");
  }, { plugin: "b" });
  off();
  off();
  const result = await hooks.emit("post-dream", { succeeded: true });
  assert.deepEqual(seen, ["b"]);
  assert.deepEqual(result.ran, ["b"]);
});

Deno.test("on() unregisters when its signal aborts, and skips an aborted signal", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  const controller = new AbortController();
  hooks.on("post-dream", () => {
    seen.push("a");
  }, { plugin: "a", signal: controller.signal });
  const off = hooks.on("post-dream", () => {
    seen.push("never");
  }, { plugin: "never", signal: AbortSignal.abort() });
  off();
  assert.deepEqual(hooks.order("post-dream"), ["a"]);
  await hooks.emit("post-dream", { succeeded: true });
  controller.abort();
  await hooks.emit("post-dream", { succeeded: true });
  assert.deepEqual(seen, ["a"]);
  assert.deepEqual(hooks.order("post-dream"), []);
});

Deno.test("emit() skips a handler unregistered by an earlier one in the same emit", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  hooks.on("pre-compaction", () => {
    seen.push("a");
    offB();
  }, { plugin: "a" });
  const offB = hooks.on("pre-compaction", () => {
    seen.push("b");
  }, { plugin: "b" });
  const result = await hooks.emit("pre-compaction", {});
  assert.deepEqual(seen, ["a"]);
  assert.deepEqual(result.ran, ["a"]);
});

Deno.test("emit() wraps a thrown error with plugin and hook (best-effort goes on)", async () => {
  const hooks = createHooks();
  const boom = new Error("disk full");
  const seen: string[] = [];
  hooks.on("pre-dream", () => {
    throw boom;
  }, { plugin: "sync-thrower" });
  hooks.on("pre-dream", async () => {
    await Promise.resolve();
    throw new TypeError("bad");
  }, { plugin: "async-thrower" });
  hooks.on("pre-dream", () => {
    seen.push("last");
  }, { plugin: "last" });
  const result = await hooks.emit("pre-dream", { agentId: "a1" });
  assert.deepEqual(seen, ["last"]);
  assert.deepEqual(result.ran, ["sync-thrower", "async-thrower", "last"]);
  assert.deepEqual(result.timedOut, []);
  assert.equal(result.failures.length, 2);
  const [first, second] = result.failures as [HookFailure, HookFailure];
  assert.equal(first.plugin, "sync-thrower");
  assert.equal(first.hook, "pre-dream");
  assert.equal(first.kind, "error");
  assert.ok(first.error instanceof HookError);
  assert.equal(first.error.code, "hook_failed");
  assert.equal(first.error.plugin, "sync-thrower");
  assert.equal(first.error.hook, "pre-dream");
  assert.equal(first.error.cause, boom);
  assert.match(
    first.error.message,
    /Cannot run hook "pre-dream": plugin "sync-thrower".*disk full/,
  );
  assert.equal(second.plugin, "async-thrower");
  assert.ok(second.error.cause instanceof TypeError);
});

Deno.test("emit() accepts a thenable that is not a Promise", async () => {
  const hooks = createHooks();
  let resolved = false;
  hooks.on("scheduled", () => {
    return {
      then(onFulfilled: () => void) {
        resolved = true;
        onFulfilled();
      },
    } as unknown as Promise<void>;
  }, { plugin: "thenable" });
  const result = await hooks.emit("scheduled", { job: "j" });
  assert.ok(resolved);
  assert.deepEqual(result.failures, []);
});

Deno.test("emit() reports a hung handler as a timeout naming plugin and hook, then goes on", async () => {
  const hung: HookFailure[] = [];
  const hooks = createHooks({ onHung: (f) => hung.push(f) });
  let handlerSignal: AbortSignal | undefined;
  hooks.on("post-restore", (_ctx, signal) => {
    handlerSignal = signal;
    return hang();
  }, { plugin: "stuck", timeout: 10 });
  hooks.on("post-restore", () => {}, { plugin: "next" });
  const result = await hooks.emit("post-restore", { snapshotId: "s1", succeeded: true });
  assert.deepEqual(result.ran, ["stuck", "next"]);
  assert.deepEqual(result.timedOut, ["stuck"]);
  assert.equal(result.failures.length, 1);
  const failure = result.failures[0]!;
  assert.equal(failure.kind, "timeout");
  assert.equal(failure.error.code, "hook_timeout");
  assert.equal(failure.error.plugin, "stuck");
  assert.equal(failure.error.hook, "post-restore");
  assert.match(failure.error.message, /plugin "stuck" did not settle within 10 ms/);
  assert.ok(handlerSignal?.aborted);
  assert.equal((handlerSignal.reason as DOMException).name, "TimeoutError");
  assert.deepEqual(hung, [failure]);
});

Deno.test("emit() reports a synchronous handler that overran its limit", async () => {
  const hung: HookFailure[] = [];
  const hooks = createHooks({ onHung: (f) => hung.push(f) });
  hooks.on("pre-dream", () => {
    const t0 = Date.now();
    while (Date.now() < t0 + 5) {
      // busy: a synchronous handler cannot be interrupted
    }
  }, { plugin: "busy", timeout: 1 });
  hooks.on("pre-dream", () => {}, { plugin: "next" });
  const result = await hooks.emit("pre-dream", {});
  assert.deepEqual(result.ran, ["busy", "next"]);
  assert.deepEqual(result.timedOut, ["busy"]);
  assert.equal(result.failures[0]!.kind, "timeout");
  assert.match(
    result.failures[0]!.error.message,
    /"busy" ran synchronously for \d+ ms, past its limit of 1 ms/,
  );
  assert.deepEqual(hung, []);
});

Deno.test("emit() uses the hook policy's default timeout", async () => {
  const hooks = createHooks({ policy: { "post-dream": { timeoutMs: 5 } } });
  hooks.on("post-dream", hang, { plugin: "stuck" });
  const result = await hooks.emit("post-dream", { succeeded: true });
  assert.deepEqual(result.timedOut, ["stuck"]);
  assert.match(result.failures[0]!.error.message, /within 5 ms/);
});

Deno.test("emit() swallows a rejection that arrives after the timeout", async () => {
  const hooks = createHooks();
  let reject: (e: Error) => void = () => {};
  hooks.on("pre-dream", () => new Promise<void>((_, r) => reject = r), {
    plugin: "late",
    timeout: 5,
  });
  const result = await hooks.emit("pre-dream", {});
  assert.deepEqual(result.timedOut, ["late"]);
  reject(new Error("too late"));
  // An unhandled rejection would fail this test.
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("emit() skips every handler when the context deadline has passed", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  hooks.on("shutdown", () => {
    seen.push("a");
  }, { plugin: "a" });
  hooks.on("shutdown", () => {
    seen.push("b");
  }, { plugin: "b" });
  const result = await hooks.emit("shutdown", { deadline: Date.now() - 1 });
  assert.deepEqual(seen, []);
  assert.deepEqual(result.ran, []);
  assert.deepEqual(result.skipped, ["b", "a"]);
  assert.deepEqual(result.failures.map((f) => [f.plugin, f.kind, f.error.code]), [
    ["b", "deadline", "hook_deadline"],
    ["a", "deadline", "hook_deadline"],
  ]);
});

Deno.test("emit() cuts a handler at the emit deadline and skips the rest", async () => {
  const hooks = createHooks({ policy: { scheduled: { deadlineMs: 10 } } });
  const seen: string[] = [];
  hooks.on("scheduled", hang, { plugin: "slow", timeout: 60_000 });
  hooks.on("scheduled", () => {
    seen.push("after");
  }, { plugin: "after" });
  const result = await hooks.emit("scheduled", { job: "nightly" });
  assert.deepEqual(seen, []);
  assert.deepEqual(result.ran, ["slow"]);
  assert.deepEqual(result.timedOut, ["slow"]);
  assert.deepEqual(result.skipped, ["after"]);
  assert.match(result.failures[0]!.error.message, /before the emit's deadline/);
  assert.equal(result.failures[1]!.kind, "deadline");
});

Deno.test("emit() rejects a fail-closed hook on the first failure, carrying all failures", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  const veto = new Error("agent busy");
  hooks.on("pre-restore", () => {
    seen.push("ok");
  }, { plugin: "ok" });
  hooks.on("pre-restore", () => {
    throw veto;
  }, { plugin: "guard" });
  hooks.on("pre-restore", () => {
    seen.push("after");
  }, { plugin: "after" });
  await assert.rejects(
    hooks.emit("pre-restore", { snapshotId: "s1" }),
    (e: unknown) => {
      assert.ok(e instanceof HookError);
      assert.equal(e.code, "hook_failed");
      assert.equal(e.plugin, "guard");
      assert.equal(e.hook, "pre-restore");
      assert.equal(e.cause, veto);
      assert.equal(e.failures.length, 1);
      assert.equal(e.failures[0]!.plugin, "guard");
      assert.equal(e.exitCode, 1);
      return true;
    },
  );
  assert.deepEqual(seen, ["ok"]);
});

Deno.test("emit() rejects a fail-closed hook when a handler times out", async () => {
  const hooks = createHooks();
  hooks.on("pre-restore", hang, { plugin: "stuck", timeout: 5 });
  await assert.rejects(
    hooks.emit("pre-restore", { snapshotId: "s1" }),
    (e: unknown) => e instanceof HookError && e.code === "hook_timeout" && e.plugin === "stuck",
  );
});

Deno.test("emit() runs every shutdown handler past failures and reports all", async () => {
  const hooks = createHooks();
  const seen: string[] = [];
  for (const name of ["a", "b", "c", "d"]) {
    hooks.on("shutdown", () => {
      seen.push(name);
      if (name === "b" || name === "d") throw new Error(`${name} failed`);
    }, { plugin: name });
  }
  const result = await hooks.emit("shutdown", { deadline: Date.now() + 60_000 });
  assert.deepEqual(seen, ["d", "c", "b", "a"]);
  assert.deepEqual(result.ran, ["d", "c", "b", "a"]);
  assert.deepEqual(result.failures.map((f) => f.plugin), ["d", "b"]);
});

Deno.test("createHooks() policy overrides change a hook's failure mode and sequence", async () => {
  const hooks = createHooks({
    policy: { "pre-dream": { failure: "fail-closed" }, shutdown: { sequence: "fifo" } },
  });
  assert.equal(hooks.policy("pre-dream").failure, "fail-closed");
  assert.equal(hooks.policy("pre-dream").timeoutMs, 60_000);
  hooks.on("pre-dream", () => {
    throw new Error("no");
  }, { plugin: "p" });
  await assert.rejects(hooks.emit("pre-dream", {}), HookError);
  const seen: string[] = [];
  hooks.on("shutdown", () => {
    seen.push("1");
  }, { plugin: "1" });
  hooks.on("shutdown", () => {
    seen.push("2");
  }, { plugin: "2" });
  await hooks.emit("shutdown", { deadline: Date.now() + 60_000 });
  assert.deepEqual(seen, ["1", "2"]);
});

Deno.test("emit() rejects with the context signal's reason and aborts the running handler", async () => {
  const hooks = createHooks();
  const controller = new AbortController();
  let handlerSignal: AbortSignal | undefined;
  const seen: string[] = [];
  hooks.on("scheduled", (_ctx, signal) => {
    handlerSignal = signal;
    queueMicrotask(() => setTimeout(() => controller.abort(new Error("stop")), 0));
    return hang();
  }, { plugin: "worker" });
  hooks.on("scheduled", () => {
    seen.push("next");
  }, { plugin: "next" });
  await assert.rejects(
    hooks.emit("scheduled", { job: "j", signal: controller.signal }),
    /stop/,
  );
  assert.ok(handlerSignal?.aborted);
  assert.deepEqual(seen, []);
  await assert.rejects(
    hooks.emit("scheduled", { job: "j", signal: controller.signal }),
    /stop/,
  );
});

Deno.test("on() and emit() refuse an unknown hook name with unknown_hook", async () => {
  const hooks = createHooks();
  assert.throws(
    // @ts-expect-error "nope" is not a hook
    () => hooks.on("nope", () => {}, { plugin: "p" }),
    (e: unknown) =>
      e instanceof HookError && e.code === "unknown_hook" && e.hook === "nope" &&
      e.plugin === "p",
  );
  await assert.rejects(
    // @ts-expect-error "nope" is not a hook
    hooks.emit("nope", {}),
    (e: unknown) => e instanceof HookError && e.code === "unknown_hook" && e.hook === "nope",
  );
  // @ts-expect-error "nope" is not a hook
  assert.throws(() => hooks.policy("nope"), HookError);
});

Deno.test("on() validates its arguments", () => {
  const hooks = createHooks();
  assert.throws(() => hooks.on("pre-dream", () => {}, { plugin: "" }), TypeError);
  // @ts-expect-error options are required
  assert.throws(() => hooks.on("pre-dream", () => {}), TypeError);
  // @ts-expect-error not a function
  assert.throws(() => hooks.on("pre-dream", 1, { plugin: "p" }), TypeError);
  // @ts-expect-error not a stage
  assert.throws(() => hooks.on("pre-dream", () => {}, { plugin: "p", order: "mid" }), TypeError);
  assert.throws(() => hooks.on("pre-dream", () => {}, { plugin: "p", timeout: 0 }), RangeError);
  assert.throws(() => hooks.on("pre-dream", () => {}, { plugin: "p", timeout: NaN }), RangeError);
});

interface TurnEndContext extends HookContext {
  turn: number;
}
interface MyHooks extends BuiltinHooks {
  "turn-end": TurnEndContext;
  "tool-call": HookContext & { tool: string };
}

Deno.test("createHooks() accepts declared custom hooks with their policy", async () => {
  const hooks = createHooks<MyHooks>({
    hooks: {
      "turn-end": { failure: "best-effort" },
      "tool-call": { failure: "fail-closed", sequence: "lifo", timeoutMs: 5 },
    },
  });
  assert.deepEqual(hooks.names.slice(-2), ["turn-end", "tool-call"]);
  assert.deepEqual(hooks.policy("turn-end"), {
    failure: "best-effort",
    sequence: "fifo",
    timeoutMs: 30_000,
    deadlineMs: 60_000,
  });
  const turns: number[] = [];
  hooks.on("turn-end", (ctx) => {
    turns.push(ctx.turn);
  }, { plugin: "p" });
  await hooks.emit("turn-end", { turn: 7 });
  assert.deepEqual(turns, [7]);
  hooks.on("tool-call", hang, { plugin: "q" });
  await assert.rejects(hooks.emit("tool-call", { tool: "grep" }), /within 5 ms/);
});

Deno.test("createHooks() refuses malformed declarations and overrides", () => {
  assert.throws(
    () =>
      createHooks<BuiltinHooks & { shutdown: BuiltinHooks["shutdown"] }>({
        hooks: { shutdown: { failure: "best-effort" } } as never,
      }),
    TypeError,
  );
  assert.throws(
    () =>
      createHooks<MyHooks>({
        hooks: {
          "turn-end": { failure: "maybe" as never },
          "tool-call": { failure: "best-effort" },
        },
      }),
    TypeError,
  );
  assert.throws(
    () => createHooks({ policy: { "pre-dream": { deadlineMs: -1 } } }),
    RangeError,
  );
  assert.throws(
    () => createHooks({ policy: { "pre-dream": { sequence: "random" as never } } }),
    TypeError,
  );
  assert.throws(
    // @ts-expect-error "nope" is not a hook
    () => createHooks({ policy: { nope: { timeoutMs: 1 } } }),
    (e: unknown) => e instanceof HookError && e.code === "unknown_hook",
  );
});

Deno.test("register() runs setup with a facade bound to the plugin name", async () => {
  const hooks = createHooks();
  const plugin: HookPlugin = {
    name: "snap",
    version: "1.2.3",
    setup(api) {
      assert.equal(api.plugin, "snap");
      assert.deepEqual(api.names, hooks.names);
      api.on("pre-dream", () => {
        throw new Error("x");
      });
      api.on("pre-dream", () => {}, { order: "pre" });
    },
  };
  await hooks.register(plugin);
  assert.deepEqual(hooks.plugins(), [{ name: "snap", version: "1.2.3" }]);
  assert.deepEqual(hooks.order("pre-dream"), ["snap", "snap"]);
  const result = await hooks.emit("pre-dream", {});
  assert.equal(result.failures[0]!.plugin, "snap");
});

Deno.test("register() awaits an async setup", async () => {
  const hooks = createHooks();
  await hooks.register({
    name: "slow-setup",
    async setup(api) {
      await new Promise((r) => setTimeout(r, 1));
      api.on("scheduled", () => {});
    },
  });
  assert.deepEqual(hooks.order("scheduled"), ["slow-setup"]);
});

Deno.test("register() refuses missing dependencies, naming them", async () => {
  const hooks = createHooks();
  const dependent: HookPlugin = { name: "b", dependencies: ["a", "c"], setup() {} };
  await assert.rejects(hooks.register(dependent), (e: unknown) => {
    assert.ok(e instanceof HookError);
    assert.equal(e.code, "missing_dependency");
    assert.equal(e.plugin, "b");
    assert.equal(e.message, 'Cannot register plugin "b": missing dependencies "a", "c"');
    assert.match(e.hint ?? "", /Register "a", "c" before "b"/);
    return true;
  });
  assert.deepEqual(hooks.plugins(), []);
  await hooks.register({ name: "a", setup() {} });
  await hooks.register({ name: "c", setup() {} });
  await hooks.register(dependent);
  assert.deepEqual(hooks.plugins().map((p) => p.name), ["a", "c", "b"]);
});

Deno.test("register() refuses a duplicate plugin name", async () => {
  const hooks = createHooks();
  await hooks.register({ name: "a", setup() {} });
  await assert.rejects(
    hooks.register({ name: "a", setup() {} }),
    (e: unknown) => e instanceof HookError && e.code === "duplicate_plugin" && e.plugin === "a",
  );
});

Deno.test("register() rolls back a plugin whose setup throws", async () => {
  const hooks = createHooks();
  const cause = new Error("no db");
  await assert.rejects(
    hooks.register({
      name: "broken",
      setup(api) {
        api.on("pre-dream", () => {});
        api.on("shutdown", () => {});
        throw cause;
      },
    }),
    (e: unknown) =>
      e instanceof HookError && e.code === "plugin_setup_failed" && e.plugin === "broken" &&
      e.cause === cause,
  );
  assert.deepEqual(hooks.order("pre-dream"), []);
  assert.deepEqual(hooks.order("shutdown"), []);
  assert.deepEqual(hooks.plugins(), []);
  await hooks.register({ name: "broken", setup() {} });
});

Deno.test("api() returns a facade that can register but not emit", async () => {
  const hooks = createHooks();
  const api = hooks.api("facade");
  assert.deepEqual(Object.keys(api).sort(), ["names", "on", "plugin"]);
  assert.ok(Object.isFrozen(api));
  assert.equal("emit" in api, false);
  assert.equal("register" in api, false);
  // @ts-expect-error the facade has no emit
  assert.equal(api.emit, undefined);
  const off = api.on("post-dream", () => {});
  assert.deepEqual(hooks.order("post-dream"), ["facade"]);
  off();
  assert.deepEqual(hooks.order("post-dream"), []);
  await hooks.emit("post-dream", { succeeded: false, error: new Error("x") });
});

Deno.test("emit() gives each handler its own signal, not aborted when it succeeds", async () => {
  const hooks = createHooks();
  const signals: AbortSignal[] = [];
  for (const plugin of ["a", "b"]) {
    hooks.on("pre-dream", async (_ctx, signal) => {
      await Promise.resolve();
      signals.push(signal);
    }, { plugin });
  }
  await hooks.emit("pre-dream", {});
  assert.equal(signals.length, 2);
  assert.notEqual(signals[0], signals[1]);
  assert.ok(signals.every((s) => !s.aborted));
});
