/**
 * Cross-process: several processes writing one local store at once, through the catalog's
 * busy timeout and the agent locks, leave a consistent store.
 *
 * @module
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { LocalStore } from "../store/local_store.ts";
import { assert, assertEquals } from "./store_assert.ts";

const here = import.meta.dirname!;
const url = (p: string) => JSON.stringify(pathToFileURL(join(here, p)).href);

Deno.test("LocalStore: three processes committing and locking concurrently keep the store consistent", async () => {
  const dir = await Deno.makeTempDir();
  const N = 3, EACH = 8;
  const code = `
    import { LocalStore } from ${url("../store/local_store.ts")};
    import { bundleBytes, manifest, snapshotId } from ${url("./store_fixtures.ts")};
    const [dir, who, each] = Deno.args;
    const store = await LocalStore.open(dir);
    for (let i = 0; i < Number(each); i++) {
      const agent = "a" + (i % 2);
      const lock = await store.lock("default", agent, { timeoutMs: 60000 });
      try {
        const at = new Date();
        const m = manifest({ agent, at, id: snapshotId(at, Number(who) * 1000 + i), label: who });
        const p = await store.create("default", agent, m.snapshot_id);
        await Deno.writeFile(p.path, bundleBytes(m));
        await p.commit(m);
        await store.audit({ at: at.toISOString(), action: "snapshot", tenant: "default",
          agent_id: agent, snapshot_id: m.snapshot_id, result: "ok", host: "h", pid: Deno.pid });
      } finally {
        await lock.release();
      }
    }
    await store.close();
  `;
  const procs = Array.from({ length: N }, (_, who) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--config",
        join(here, "..", "deno.json"),
        code,
        dir,
        String(who),
        String(EACH),
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn());
  for (const p of procs) assert((await p.status).success);
  const store = await LocalStore.open(dir);
  try {
    assertEquals((await store.list()).length, N * EACH);
    for (let who = 0; who < N; who++) {
      assertEquals((await store.list({ label: String(who) })).length, EACH);
    }
    assertEquals((await store.auditLog({ action: "snapshot" })).length, N * EACH);
    assertEquals(await store.reindex(), N * EACH);
    assertEquals([...Deno.readDirSync(join(dir, ".tmp"))].length, 0);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
