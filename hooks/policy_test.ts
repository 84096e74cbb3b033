import assert from "node:assert/strict";
import { HOOK_POLICIES } from "./policy.ts";
import { createHooks } from "./create_hooks.ts";

Deno.test("HOOK_POLICIES covers every built-in hook with the documented behaviour", () => {
  assert.deepEqual(Object.keys(HOOK_POLICIES), createHooks().names);
  assert.equal(HOOK_POLICIES["pre-dream"].failure, "best-effort");
  assert.equal(HOOK_POLICIES["pre-restore"].failure, "fail-closed");
  assert.equal(HOOK_POLICIES.shutdown.sequence, "lifo");
  for (const [name, policy] of Object.entries(HOOK_POLICIES)) {
    if (name !== "pre-restore") assert.equal(policy.failure, "best-effort", name);
    if (name !== "shutdown") assert.equal(policy.sequence, "fifo", name);
    assert.ok(policy.timeoutMs > 0 && policy.timeoutMs <= policy.deadlineMs, name);
  }
});

Deno.test("HOOK_POLICIES is frozen", () => {
  assert.ok(Object.isFrozen(HOOK_POLICIES));
  assert.ok(Object.values(HOOK_POLICIES).every(Object.isFrozen));
});

/** Rows `| \`name\` | failure | sequence | timeoutMs | deadlineMs |` of a markdown table. */
function tableRows(text: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^\s*(?:\*\s*)?\|\s*`([a-z-]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (m === null) continue;
    rows.set(m[1]!, m[2]!.split("|").map((c) => c.trim().replaceAll(/[\s_]/g, "")));
  }
  return rows;
}

Deno.test("HOOK_POLICIES matches the table in docs/HOOKS.md and in its own doc", async () => {
  const sources = {
    "docs/HOOKS.md": await Deno.readTextFile(new URL("../docs/HOOKS.md", import.meta.url)),
    "hooks/policy.ts": await Deno.readTextFile(new URL("./policy.ts", import.meta.url)),
    "hooks/mod.ts": await Deno.readTextFile(new URL("./mod.ts", import.meta.url)),
  };
  for (const [file, text] of Object.entries(sources)) {
    const rows = tableRows(text);
    for (const [name, p] of Object.entries(HOOK_POLICIES)) {
      const row = rows.get(name);
      assert.ok(row, `${file} has no row for ${name}`);
      assert.deepEqual(
        row.slice(0, 4),
        [p.failure, p.sequence, String(p.timeoutMs), String(p.deadlineMs)],
        `${file}: ${name}`,
      );
    }
  }
});
