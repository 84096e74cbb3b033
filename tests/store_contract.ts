/**
 * The behaviour every {@linkcode Store} must have, as a reusable test suite: the local
 * store and the S3 store both run it.
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "./store_assert.ts";
import { LockedError, NotFoundError, RefusedError } from "../errors.ts";
import type { Store } from "../store/types.ts";
import { bundleBytes, manifest, snapshotId } from "./store_fixtures.ts";
import type { Manifest } from "../bundle/types.ts";

/** Writes one snapshot through create/commit. */
export async function put(store: Store, m: Manifest, payload?: Uint8Array): Promise<void> {
  const p = await store.create(m.tenant, m.agent_id, m.snapshot_id);
  await Deno.writeFile(p.path, bundleBytes(m, payload));
  await p.commit(m);
}

const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const at = (h: number) => new Date(T0 + h * 3600_000);

/**
 * Registers the contract tests.
 *
 * @param kind Name prefix of the tests, e.g. `"LocalStore"`.
 * @param open Opens a fresh, empty store.
 */
export function storeContract(
  kind: string,
  open: () => Promise<Store & AsyncDisposable>,
  options: { sanitize?: boolean } = {},
): void {
  const test = (name: string, fn: (s: Store) => Promise<void>) =>
    Deno.test({
      name: `${kind} ${name}`,
      sanitizeOps: options.sanitize ?? true,
      sanitizeResources: options.sanitize ?? true,
      fn: async () => {
        await using s = await open();
        await fn(s);
      },
    });

  test("create() then commit() makes the snapshot listed; pending files are not", async (s) => {
    const m = manifest({ at: at(1) });
    const p = await s.create("default", "a1", m.snapshot_id);
    await Deno.writeFile(p.path, bundleBytes(m));
    assertEquals(await s.list(), []);
    const info = await p.commit(m);
    assertEquals(info.id, m.snapshot_id);
    const all = await s.list();
    assertEquals(all.map((x) => x.id), [m.snapshot_id]);
    assertEquals(all[0]?.size, bundleBytes(m).length);
    assertEquals(all[0]?.pinned, false);
  });

  test("abort() discards a pending bundle", async (s) => {
    const m = manifest({ at: at(1) });
    const p = await s.create("default", "a1", m.snapshot_id);
    await Deno.writeFile(p.path, bundleBytes(m));
    await p.abort();
    assertEquals(await s.list(), []);
    await p.abort();
  });

  test("commit() refuses a manifest for another snapshot and a duplicate id", async (s) => {
    const m = manifest({ at: at(1) });
    const other = manifest({ at: at(2) });
    const p = await s.create("default", "a1", m.snapshot_id);
    await Deno.writeFile(p.path, bundleBytes(other));
    await assertRejects(() => p.commit(other), RefusedError);
    await p.abort();
    await put(s, m);
    await assertRejects(() => put(s, m), RefusedError);
    assertEquals((await s.list()).length, 1);
  });

  test("list() filters and sorts oldest first", async (s) => {
    await put(s, manifest({ at: at(3), agent: "a1", label: "x" }));
    await put(s, manifest({ at: at(1), agent: "a1", createdBy: "pre-dream" }));
    await put(s, manifest({ at: at(2), agent: "a2", tenant: "t2" }));
    const all = await s.list();
    assertEquals(all.map((x) => x.created_at), [at(1), at(2), at(3)].map((d) => d.toISOString()));
    assertEquals((await s.list({ agent: "a1" })).length, 2);
    assertEquals((await s.list({ tenant: "t2" })).map((x) => x.agent_id), ["a2"]);
    assertEquals((await s.list({ label: "x" })).length, 1);
    assertEquals((await s.list({ createdBy: "pre-dream" })).length, 1);
    assertEquals((await s.list({ since: at(2).toISOString() })).length, 2);
    assertEquals((await s.list({ until: at(2).toISOString() })).length, 1);
    assertEquals(
      (await s.list({ agent: "a1", since: at(2).toISOString(), until: at(4).toISOString() }))
        .length,
      1,
    );
  });

  test("resolve() takes a full id, a unique prefix, or latest", async (s) => {
    const a = manifest({ at: at(1), id: snapshotId(at(1), 0xaaaa0001) });
    const b = manifest({ at: at(2), id: snapshotId(at(2), 0xbbbb0001) });
    const c = manifest({ at: at(3), agent: "a2" });
    await put(s, a);
    await put(s, b);
    await put(s, c);
    assertEquals((await s.resolve(a.snapshot_id)).id, a.snapshot_id);
    assertEquals((await s.resolve(b.snapshot_id.slice(0, 12))).id, b.snapshot_id);
    assertEquals((await s.resolve("latest", { agent: "a1" })).id, b.snapshot_id);
    await assertRejects(() => s.resolve("latest"), NotFoundError, "agents");
    await assertRejects(() => s.resolve("2026"), NotFoundError, "matches 3");
    await assertRejects(() => s.resolve("1999"), NotFoundError);
    await assertRejects(() => s.resolve(a.snapshot_id, { agent: "a2" }), NotFoundError);
  });

  test("readManifest() and open() return the manifest and the bundle bytes", async (s) => {
    const m = manifest({ at: at(1), label: "hello" });
    const payload = crypto.getRandomValues(new Uint8Array(5000));
    await put(s, m, payload);
    assertEquals(await s.readManifest(m.snapshot_id), m);
    const bytes = new Uint8Array(await new Response(await s.open(m.snapshot_id)).arrayBuffer());
    assertEquals(bytes, bundleBytes(m, payload));
    await assertRejects(() => s.readManifest("nope"), NotFoundError);
  });

  test("delete() refuses the last and pinned snapshots unless forced", async (s) => {
    const a = manifest({ at: at(1) });
    const b = manifest({ at: at(2) });
    await put(s, a);
    await assertRejects(() => s.delete(a.snapshot_id), RefusedError, "last snapshot");
    await put(s, b);
    await s.pin(a.snapshot_id, true);
    await assertRejects(() => s.delete(a.snapshot_id), RefusedError, "pinned");
    await s.pin(a.snapshot_id, false);
    await s.delete(a.snapshot_id);
    assertEquals((await s.list()).map((x) => x.id), [b.snapshot_id]);
    await s.delete(b.snapshot_id, { force: true });
    assertEquals(await s.list(), []);
    await assertRejects(() => s.delete(b.snapshot_id), NotFoundError);
  });

  test("pin() is listed and survives reindex()", async (s) => {
    const a = manifest({ at: at(1) });
    const b = manifest({ at: at(2) });
    await put(s, a);
    await put(s, b);
    await s.pin(a.snapshot_id, true);
    assertEquals((await s.list()).map((x) => x.pinned), [true, false]);
    assertEquals(await s.reindex(), 2);
    assertEquals((await s.list()).map((x) => x.pinned), [true, false]);
    await s.pin(a.snapshot_id, false);
    assertEquals((await s.list()).map((x) => x.pinned), [false, false]);
  });

  test("importFile() copies a bundle in and refuses a duplicate", async (s) => {
    const m = manifest({ at: at(1), agent: "imp" });
    const dir = await Deno.makeTempDir();
    try {
      const file = `${dir}/x.msnap`;
      await Deno.writeFile(file, bundleBytes(m));
      const info = await s.importFile(file, m);
      assertEquals(info.agent_id, "imp");
      assertEquals((await s.list({ agent: "imp" })).length, 1);
      await assertRejects(() => s.importFile(file, m), RefusedError);
      assertEquals(await s.readManifest(m.snapshot_id), m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  test("audit() appends records auditLog() reads back filtered", async (s) => {
    const rec = (agent: string, action: string, i: number) => ({
      at: at(i).toISOString(),
      action,
      tenant: "default",
      agent_id: agent,
      snapshot_id: null,
      result: "ok",
      host: "h",
      pid: 1,
    });
    await s.audit(rec("a1", "restore", 1));
    await s.audit(rec("a2", "restore", 2));
    await s.audit(rec("a1", "delete", 3));
    assertEquals((await s.auditLog()).length, 3);
    assertEquals((await s.auditLog({ agent: "a1" })).map((r) => r.action), ["restore", "delete"]);
    assertEquals((await s.auditLog({ action: "restore" })).length, 2);
    assertEquals((await s.auditLog({ since: at(2).toISOString() })).length, 2);
  });

  test("lock() with timeoutMs 0 fails at once with LockedError naming the owner", async (s) => {
    const held = await s.lock("default", "a1", { timeoutMs: 0 });
    try {
      await assertRejects(
        () => s.lock("default", "a1", { timeoutMs: 0 }),
        LockedError,
        `held by pid ${Deno.pid}`,
      );
      const other = await s.lock("default", "a2", { timeoutMs: 0 });
      await other.release();
    } finally {
      await held.release();
    }
    const again = await s.lock("default", "a1", { timeoutMs: 0 });
    await again.release();
  });

  test("stateDir() is a local directory per agent", async (s) => {
    const d = await s.stateDir("default", "a1");
    assert((await Deno.stat(d)).isDirectory);
    assert(d !== await s.stateDir("default", "a2"));
  });
}
