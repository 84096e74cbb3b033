import assert from "node:assert/strict";
import { createHooks } from "./create_hooks.ts";
import type {
  BuiltinHooks,
  EmitResult,
  HookApi,
  HookContext,
  HookHandler,
  HookPlugin,
  Hooks,
} from "./types.ts";

// These tests are checked by `deno test` (type-checks the file); the assertions at runtime
// only keep them honest. Each `@ts-expect-error` fails the type check if the error vanishes.

interface MyHooks extends BuiltinHooks {
  "turn-end": HookContext & { turn: number };
}

Deno.test("Hooks.emit() checks the context type from the hook name", async () => {
  const hooks: Hooks = createHooks();
  const result: EmitResult<"pre-restore"> = await hooks.emit("pre-restore", { snapshotId: "s" });
  assert.equal(result.hook, "pre-restore");
  // @ts-expect-error pre-restore needs the snapshot id
  await hooks.emit("pre-restore", {});
  // @ts-expect-error snapshotId is a string
  await hooks.emit("pre-restore", { snapshotId: 1 });
  // @ts-expect-error shutdown needs its deadline
  await hooks.emit("shutdown", { signalName: "SIGTERM" });
  // @ts-expect-error post-dream has no snapshotId field
  await hooks.emit("post-dream", { succeeded: true, snapshotId: "s" });
});

Deno.test("Hooks.on() types the handler's context from the hook name", () => {
  const hooks = createHooks();
  hooks.on("pre-restore", (ctx) => {
    const id: string = ctx.snapshotId;
    void id;
  }, { plugin: "p" });
  hooks.on("shutdown", (ctx, signal) => {
    const deadline: number = ctx.deadline;
    const aborted: boolean = signal.aborted;
    void deadline, aborted;
  }, { plugin: "p" });
  const wrong: HookHandler<BuiltinHooks["scheduled"]> = () => {};
  // @ts-expect-error a scheduled handler does not fit pre-restore
  hooks.on("pre-restore", wrong, { plugin: "p" });
  // @ts-expect-error the plugin name is required
  assert.throws(() => hooks.on("pre-dream", () => {}, {}));
});

Deno.test("createHooks<H>() requires the runtime list of H's own hooks", async () => {
  const incomplete = (): unknown =>
    // @ts-expect-error the declarations of "turn-end" are missing
    createHooks<MyHooks>({ hooks: {} });
  assert.throws(() => (incomplete() as Hooks<MyHooks>).on("turn-end", () => {}, { plugin: "p" }));
  // @ts-expect-error options are required when H has its own hooks
  createHooks<MyHooks>();
  const hooks = createHooks<MyHooks>({ hooks: { "turn-end": { failure: "best-effort" } } });
  await hooks.emit("turn-end", { turn: 1 });
  // @ts-expect-error turn is a number
  await hooks.emit("turn-end", { turn: "1" });
  // @ts-expect-error the built-in registry does not know "turn-end"
  await createHooks().emit("turn-end", { turn: 1 }).catch(() => {});
});

Deno.test("HookApi cannot emit, and a plugin sees the runtime's hooks", async () => {
  const plugin: HookPlugin<MyHooks> = {
    name: "p",
    setup(api: HookApi<MyHooks>) {
      api.on("turn-end", (ctx) => {
        const turn: number = ctx.turn;
        void turn;
      });
      // @ts-expect-error the facade cannot emit
      api.emit?.("turn-end", { turn: 1 });
      // @ts-expect-error the facade cannot register plugins
      api.register?.(plugin);
    },
  };
  const hooks = createHooks<MyHooks>({ hooks: { "turn-end": { failure: "best-effort" } } });
  await hooks.register(plugin);
  assert.deepEqual(hooks.order("turn-end"), ["p"]);
});

Deno.test("Hooks<MyHooks> is assignable to Hooks and usable from generic code", async () => {
  const mine = createHooks<MyHooks>({ hooks: { "turn-end": { failure: "best-effort" } } });
  const base: Hooks = mine;
  function attach<H extends BuiltinHooks>(hooks: Hooks<H>): () => void {
    return hooks.on("pre-dream", (ctx, signal) => {
      void ctx.agentId, signal.aborted;
    }, { plugin: "generic" });
  }
  const off = attach(mine);
  assert.deepEqual(base.order("pre-dream"), ["generic"]);
  off();
  await base.emit("pre-dream", {});
});
