import assert from "node:assert/strict";
import { MANIFEST_SCHEMA } from "./_manifest_schema.ts";

Deno.test("MANIFEST_SCHEMA equals docs/manifest.schema.json", async () => {
  const doc = JSON.parse(
    await Deno.readTextFile(new URL("../docs/manifest.schema.json", import.meta.url)),
  );
  assert.deepEqual(MANIFEST_SCHEMA, doc);
});
