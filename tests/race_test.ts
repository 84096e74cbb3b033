/**
 * Concurrency through the CLI, beyond tests/concurrency_test.ts (concurrent snapshots forming
 * one chain, a killed lock holder): a snapshot racing a restore of the same agent, and a
 * writer process hammering a WAL database with transfers while snapshots capture it.
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { finish, fixture, memsnap, sourceFlags, spawnCli } from "./_reliability.ts";
import { dream, fingerprint } from "../examples/sample_memory.ts";
import { readManifest } from "../bundle/read_manifest.ts";
import { openBundleFile } from "../bundle/open_bundle_file.ts";
import { extractBundle } from "../bundle/extract_bundle.ts";
import type { Manifest } from "../bundle/types.ts";
import { createSnapshotter } from "../snapshotter.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { loadPacks } from "../redact/load_pack.ts";
import { openStore } from "../store/open_store.ts";

const WRITER = new URL("./fixtures/capture/sqlite_writer.ts", import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function manifestAt(path: string): Promise<Manifest> {
  return await readManifest(await openBundleFile(path));
}

/** memdir artifacts as `path=sha256` lines: what the working tree held. */
function memdirOf(m: Manifest): string {
  return m.artifacts.filter((a) => a.path.startsWith("memdir/")).map((a) => `${a.path}=${a.sha256}`)
    .join("\n");
}

Deno.test("race: memsnap snapshot right after a restore captures the restored memory", async () => {
  await using f = await fixture({ prefix: "memsnap-race-" });
  const flags = [...f.base, ...sourceFlags(f.mem)];
  const a = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
  assertEquals(a.code, 0, a.stdout + a.stderr);
  const fpA = await fingerprint(f.mem);
  await dream(f.mem);
  const r = await memsnap(["restore", (a.json as { id: string }).id, ...flags, "--json"]);
  assertEquals(r.code, 0, r.stdout + r.stderr);
  assertEquals(await fingerprint(f.mem), fpA);
  // The restored git repository must be readable by the next capture.
  const s = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
  assertEquals(s.code, 0, `snapshot after restore: ${s.stdout}${s.stderr}`);
  assertEquals(await fingerprint(f.mem), fpA);
});

Deno.test("race: a snapshot racing a restore of the same agent: both succeed, in some order, and the store stays consistent", async () => {
  await using f = await fixture({ prefix: "memsnap-race-" });
  const flags = [...f.base, ...sourceFlags(f.mem)];
  const a = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
  assertEquals(a.code, 0, a.stdout + a.stderr);
  const idA = (a.json as { id: string }).id;
  const mA = await manifestAt((a.json as { path: string }).path);
  const fpA = await fingerprint(f.mem);
  const journal = join(f.store, "default", "a1", ".state", "restore-journal.json");
  for (const round of [1, 2]) {
    await dream(f.mem, round);
    const restore = spawnCli(["restore", idA, ...flags, "--json"], {
      MEMSNAP_TEST_SWAP_DELAY_MS: "40",
    });
    let exited = false;
    restore.status.then(() => (exited = true));
    if (round === 1) {
      // Start the snapshot while the restore holds the lock (its journal exists).
      const deadline = performance.now() + 60_000;
      while (!exited && performance.now() < deadline) {
        if (await Deno.lstat(journal).then(() => true, () => false)) break;
        await sleep(5);
      }
    }
    const snapshot = spawnCli(["snapshot", ...flags, "--no-redact", "--json"]);
    const [r, s] = await Promise.all([finish(restore), finish(snapshot)]);
    assertEquals(r.code, 0, `restore (round ${round}): ${r.stdout}${r.stderr}`);
    assertEquals(s.code, 0, `snapshot (round ${round}): ${s.stdout}${s.stderr}`);
    // Memory ends as the restored state (a snapshot never changes memory).
    assertEquals(await fingerprint(f.mem), fpA);
    // The snapshot holds entirely the old (dreamed) state or entirely the restored one.
    const pre = (r.json as { pre_snapshot: { path: string } }).pre_snapshot;
    const mPre = await manifestAt(pre.path);
    const mSnap = await manifestAt((s.json as { path: string }).path);
    const which = memdirOf(mSnap) === memdirOf(mA)
      ? "restored"
      : memdirOf(mSnap) === memdirOf(mPre)
      ? "old"
      : "mixed";
    assert(which !== "mixed", `round ${round}: the racing snapshot holds a mix of states`);
    if (round === 1) assertEquals(which, "restored", "the snapshot waited for the restore");
  }
  // Every listed bundle verifies, and parents form one chain.
  const list = await memsnap(["list", ...f.base, "--json"]);
  assertEquals(list.code, 0, list.stderr);
  const rows = list.json as { id: string; parent: string | null }[];
  assertEquals(rows.length, 1 + 2 * 2, "A, and per round a pre-restore snapshot and a snapshot");
  for (let i = 1; i < rows.length; i++) assertEquals(rows[i]!.parent, rows[i - 1]!.id);
  const verified = await Promise.all(
    rows.map((row) => memsnap(["verify", "--store", f.store, row.id, "--json"])),
  );
  verified.forEach((v, i) => assertEquals(v.code, 0, `verify ${rows[i]!.id}: ${v.stdout}`));
});

Deno.test("race: memsnap snapshot of a WAL database under a writer hammering transfers keeps the invariant", async () => {
  await using f = await fixture({ prefix: "memsnap-race-", notes: 2, facts: 5 });
  const ledger = join(f.root, "ledger.sqlite");
  const db = new DatabaseSync(ledger);
  db.exec(`PRAGMA journal_mode = WAL;
    CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
    CREATE TABLE log(n INTEGER);`);
  for (let i = 1; i <= 10; i++) db.prepare("INSERT INTO accounts VALUES (?, 100)").run(i);
  db.close();
  const writer = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WRITER, ledger, "120000"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const ids: string[] = [];
  const paths: string[] = [];
  try {
    const reader = writer.stdout.getReader();
    const { value } = await reader.read();
    assertEquals(new TextDecoder().decode(value).trim(), "ready");
    reader.releaseLock();
    for (let i = 0; i < 3; i++) {
      const s = await memsnap([
        "snapshot",
        ...f.base,
        "--sqlite",
        `ledger=${ledger}`,
        "--no-redact",
        "--json",
      ]);
      assertEquals(s.code, 0, s.stdout + s.stderr);
      ids.push((s.json as { id: string }).id);
      paths.push((s.json as { path: string }).path);
    }
  } finally {
    writer.kill("SIGTERM");
    await writer.status;
    await writer.stdout.cancel().catch(() => {});
  }
  const logs = new Set<number>();
  for (const [i, path] of paths.entries()) {
    const out = join(f.root, `x${i}`);
    await extractBundle(await openBundleFile(path), out);
    const copy = new DatabaseSync(join(out, "sqlite", "ledger.sqlite"), { readOnly: true });
    try {
      const { sum } = copy.prepare("SELECT sum(balance) AS sum FROM accounts").get() as {
        sum: number;
      };
      assertEquals(Number(sum), 1000, `the invariant is broken in snapshot ${ids[i]}`);
      const check = copy.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
      assertEquals(check.integrity_check, "ok");
      const { n } = copy.prepare("SELECT count(*) AS n FROM log").get() as { n: number };
      logs.add(Number(n));
    } finally {
      copy.close();
    }
  }
  assert(logs.size > 1, `the writer really ran between the snapshots (log sizes ${[...logs]})`);
  const v = await Promise.all(ids.map((id) => memsnap(["verify", "--store", f.store, id])));
  v.forEach((r, i) => assertEquals(r.code, 0, `verify ${ids[i]}: ${r.stdout}${r.stderr}`));
});

Deno.test("restore: redaction never touches live memory, and the pre-restore snapshot is never redacted, so undo is exact", async () => {
  await using f = await fixture({ prefix: "memsnap-race-" });
  const store = await openStore(f.store);
  try {
    const snap = createSnapshotter({
      store,
      agent: "a1",
      captures: [
        memdirPlugin({ dir: f.mem.memdir }),
        gitPlugin({ dir: f.mem.memdir }),
        sqlitePlugin({ databases: f.mem.sqlite }),
        statePlugin({ files: f.mem.state }),
      ],
      redact: { packs: await loadPacks("secrets,pii"), key: new Uint8Array(32) },
    });
    const scratch = join(f.mem.memdir, "notes", "scratch.md");
    const secret = "ghp_R2d2C3p0BB8kX9qLmN4vT7wZ1yA5sE6uJ0hF";
    const live = await fingerprint(f.mem);
    const redacted = await snap.snapshot();
    assert(redacted.manifest.redaction.redacted);
    assertEquals(
      await fingerprint(f.mem),
      live,
      "a redacted snapshot leaves live memory as it was",
    );
    assert((await Deno.readTextFile(scratch)).includes(secret));
    await dream(f.mem);
    const dreamed = await fingerprint(f.mem);
    const r = await snap.restore(redacted.info.id);
    assert(!(await Deno.readTextFile(scratch)).includes(secret), "restored the redacted copy");
    const pre = await store.readManifest(r.preSnapshot!.id);
    assertEquals(pre.created_by, "pre-restore");
    assertEquals(pre.redaction.redacted, false, "the pre-restore snapshot is not redacted");
    await snap.restore(r.preSnapshot!.id, { noPreSnapshot: true });
    assertEquals(await fingerprint(f.mem), dreamed, "undo gives back the exact memory");
    assert((await Deno.readTextFile(scratch)).includes(secret));
  } finally {
    await store.close();
  }
});
