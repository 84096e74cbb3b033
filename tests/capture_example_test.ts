import assert from "node:assert/strict";
import { run } from "./_tools.ts";

Deno.test("examples/custom_plugin.ts captures and restores its index identically", async () => {
  const example = new URL("../examples/custom_plugin.ts", import.meta.url).pathname;
  const r = await run(Deno.execPath(), ["run", "-A", example]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.text, /header\.json: restored identical/);
  assert.match(r.text, /index\.bin: restored identical/);
  assert.match(r.text, /dimension 384 is not one of 1536/);
});
