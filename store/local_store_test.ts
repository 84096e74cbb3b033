import { join } from "node:path";
import { LocalStore } from "./local_store.ts";
import { put, storeContract } from "../tests/store_contract.ts";
import { assert, assertEquals } from "../tests/store_assert.ts";
import { bundleBytes, manifest } from "../tests/store_fixtures.ts";
import type { Store } from "./types.ts";

async function fresh(): Promise<LocalStore & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "memsnap-store-" });
  const store = await LocalStore.open(dir);
  return Object.assign(store, {
    async [Symbol.asyncDispose]() {
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  });
}

storeContract("LocalStore", fresh as () => Promise<Store & AsyncDisposable>);

Deno.test("LocalStore lays bundles out as <tenant>/<agent>/<id>.msnap", async () => {
  await using s = await fresh();
  const m = manifest({ tenant: "t1", agent: "a1" });
  const p = await s.create("t1", "a1", m.snapshot_id);
  assert(p.path.startsWith(join(s.root, ".tmp")) && p.path.endsWith(".partial"));
  await Deno.writeFile(p.path, bundleBytes(m));
  const info = await p.commit(m);
  assertEquals(info.path, join(s.root, "t1", "a1", `${m.snapshot_id}.msnap`));
  assertEquals(s.localPath(m.snapshot_id), info.path);
  assertEquals([...Deno.readDirSync(join(s.root, ".tmp"))].length, 0);
});

Deno.test("LocalStore.reindex() finds a bundle without a row and drops a row without a bundle", async () => {
  await using s = await fresh();
  const a = manifest({});
  const b = manifest({});
  await put(s, a);
  await put(s, b);
  // A bundle placed but never cataloged (crash between rename and insert).
  const c = manifest({});
  await Deno.writeFile(join(s.root, "default", "a1", `${c.snapshot_id}.msnap`), bundleBytes(c));
  assertEquals((await s.list()).length, 2);
  // A row whose bundle vanished.
  await Deno.remove(join(s.root, "default", "a1", `${a.snapshot_id}.msnap`));
  assertEquals((await s.list()).map((x) => x.id), [b.snapshot_id]);
  assertEquals(await s.reindex(), 2);
  assertEquals((await s.list()).map((x) => x.id).sort(), [b.snapshot_id, c.snapshot_id].sort());
});

Deno.test("LocalStore.open() rebuilds a missing catalog from the bundles", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const s = await LocalStore.open(dir);
    await put(s, manifest({}));
    await put(s, manifest({ label: "L" }));
    await s.close();
    for (const f of ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"]) {
      await Deno.remove(join(dir, f)).catch(() => {});
    }
    const s2 = await LocalStore.open(dir);
    assertEquals((await s2.list({ label: "L" })).length, 1);
    assertEquals((await s2.list()).length, 2);
    await s2.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LocalStore.cleanPartials() removes only old .partial files", async () => {
  await using s = await fresh();
  const old = join(s.root, ".tmp", "x.1.partial");
  const young = join(s.root, ".tmp", "y.2.partial");
  await Deno.writeTextFile(old, "");
  await Deno.writeTextFile(young, "");
  const past = new Date(Date.now() - 2 * 3600_000);
  await Deno.utime(old, past, past);
  assertEquals(await s.cleanPartials(), [old]);
  await s.reindex();
  assert((await Deno.stat(young)).isFile);
});

Deno.test("LocalStore.list() is served from the catalog with 5000 snapshots", async () => {
  await using s = await fresh();
  const t0 = Date.parse("2026-01-01T00:00:00Z");
  for (let i = 0; i < 5000; i++) {
    const m = manifest({ at: new Date(t0 + i * 60_000), agent: `a${i % 10}` });
    await Deno.mkdir(join(s.root, "default", m.agent_id), { recursive: true });
    await Deno.writeFile(
      join(s.root, "default", m.agent_id, `${m.snapshot_id}.msnap`),
      bundleBytes(m),
    );
  }
  let t = performance.now();
  assertEquals(await s.reindex(), 5000);
  const reindexMs = performance.now() - t;
  t = performance.now();
  assertEquals((await s.list()).length, 5000);
  const listAllMs = performance.now() - t;
  t = performance.now();
  assertEquals((await s.list({ agent: "a3" })).length, 500);
  const listAgentMs = performance.now() - t;
  t = performance.now();
  await s.resolve("latest", { agent: "a3" });
  const latestMs = performance.now() - t;
  console.log(
    `5000 bundles: reindex ${reindexMs.toFixed(0)} ms, list all ${listAllMs.toFixed(1)} ms, ` +
      `list one agent ${listAgentMs.toFixed(1)} ms, resolve latest ${latestMs.toFixed(1)} ms`,
  );
});
