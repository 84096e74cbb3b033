import assert from "node:assert/strict";
import { join } from "node:path";
import { redactionKey } from "./redaction_key.ts";
import { openStore } from "./store/open_store.ts";
import { tempDir } from "./tests/_tools.ts";
import { UsageError } from "./errors.ts";

Deno.test("redactionKey() creates one key for a fresh store however many ask at once", async () => {
  for (let round = 0; round < 5; round++) {
    await using dir = await tempDir();
    const store = await openStore(join(dir.path, "store"));
    try {
      // Every caller but one finds the file the first one creates: none may read it half
      // written, and all get the same key.
      const keys = await Promise.all(Array.from({ length: 16 }, () => redactionKey(store)));
      const hex = new Set(keys.map((k) => Array.from(k, (b) => b.toString(16)).join(",")));
      assert.equal(hex.size, 1);
      assert.equal(keys[0]!.length, 32);
      const file = join(dir.path, "store", ".memsnap", "redaction.key");
      assert.match(await Deno.readTextFile(file), /^[0-9a-f]{64}\n$/);
      assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
      const names = [];
      for await (const e of Deno.readDir(join(dir.path, "store", ".memsnap"))) names.push(e.name);
      assert.deepEqual(names, ["redaction.key"], "no temporary file left");
    } finally {
      await store.close();
    }
  }
});

Deno.test("redactionKey() refuses a damaged key file", async () => {
  await using dir = await tempDir();
  const store = await openStore(join(dir.path, "store"));
  try {
    await Deno.mkdir(join(dir.path, "store", ".memsnap"), { recursive: true });
    await Deno.writeTextFile(join(dir.path, "store", ".memsnap", "redaction.key"), "nope\n");
    await assert.rejects(
      redactionKey(store),
      (e) => e instanceof UsageError && /expected 64 hex characters/.test(e.message),
    );
  } finally {
    await store.close();
  }
});
