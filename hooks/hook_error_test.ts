import assert from "node:assert/strict";
import { ExitCode, exitCodeOf, MemsnapError } from "../errors.ts";
import { HookError } from "./hook_error.ts";

Deno.test("HookError carries code, plugin, hook, cause and failures", () => {
  const cause = new Error("boom");
  const e = new HookError("hook_failed", 'Cannot run hook "pre-dream": plugin "p" failed', {
    plugin: "p",
    hook: "pre-dream",
    cause,
    hint: "fix p",
  });
  assert.ok(e instanceof MemsnapError);
  assert.equal(e.name, "HookError");
  assert.equal(e.code, "hook_failed");
  assert.equal(e.plugin, "p");
  assert.equal(e.hook, "pre-dream");
  assert.equal(e.cause, cause);
  assert.equal(e.hint, "fix p");
  assert.deepEqual(e.failures, []);
  assert.equal(exitCodeOf(e), ExitCode.Internal);
});

Deno.test("HookError leaves plugin, hook and cause undefined when not given", () => {
  const e = new HookError("duplicate_plugin", "Cannot register plugin");
  assert.equal(e.plugin, undefined);
  assert.equal(e.hook, undefined);
  assert.equal("cause" in e, false);
});
