/**
 * Crash injection: SIGKILL `memsnap snapshot` and `memsnap restore` processes at random points.
 *
 * - After a killed snapshot, `memsnap list` shows only complete bundles, each of which
 *   `memsnap verify` accepts, and never a `.partial` file; the next snapshot works (the dead
 *   process's lock is recovered).
 * - After a killed restore, `memsnap recover` (or, alternately, the next command: a snapshot)
 *   leaves live memory entirely the old or entirely the restored state, by `fingerprint()`.
 *   The restore runs with `MEMSNAP_TEST_SWAP_DELAY_MS`, and most kills are timed from the
 *   moment the restore journal appears, so they land in staging and inside the swap window.
 *
 * `MEMSNAP_CRASH_RUNS=N` sets the number of kills of each kind (default 4).
 * `MEMSNAP_SEED` replays the kill times.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  envCount,
  type Fixture,
  fixture,
  memsnap,
  prng,
  runSeed,
  sourceFlags,
  spawnCli,
} from "./_reliability.ts";
import { dream, fingerprint } from "../examples/sample_memory.ts";
import { assertRejects } from "./_assert.ts";
import { createSnapshotter } from "../snapshotter.ts";
import { realSwapFs, type SwapFs } from "../_swap.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { openStore } from "../store/open_store.ts";

const SNAPSHOT_KILLS = envCount("MEMSNAP_CRASH_RUNS", 4);
const RESTORE_KILLS = SNAPSHOT_KILLS;
const SWAP_DELAY_MS = 60;
const rand = prng(runSeed("crash_test"));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let shared: Fixture | undefined;
async function mem(): Promise<Fixture> {
  shared ??= await fixture({ notes: 20, facts: 1000, prefix: "memsnap-crash-" });
  return shared;
}

async function kill(child: Deno.ChildProcess): Promise<boolean> {
  let killed = true;
  try {
    child.kill("SIGKILL");
  } catch {
    killed = false; // already exited
  }
  const status = await child.status;
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
  return killed && status.signal === "SIGKILL";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

async function hasPartial(dir: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".partial")) return true;
  } catch {
    // no dir yet
  }
  return false;
}

interface Row {
  id: string;
  path: string;
}

async function listRows(f: Fixture): Promise<Row[]> {
  const r = await memsnap(["list", "--store", f.store, "--agent", "a1", "--json"]);
  assertEquals(r.code, 0, r.stdout + r.stderr);
  const rows = r.json as Row[];
  for (const row of rows) {
    assert(row.path.endsWith(`${row.id}.msnap`), `listed a non-bundle path ${row.path}`);
    assert(!row.path.includes(".partial") && !row.path.includes("/.tmp/"), row.path);
  }
  return rows;
}

async function verifyAll(f: Fixture, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 3) {
    const runs = await Promise.all(
      ids.slice(i, i + 3).map((id) => memsnap(["verify", "--store", f.store, id, "--json"])),
    );
    runs.forEach((r, k) => assertEquals(r.code, 0, `verify ${ids[i + k]}: ${r.stdout}${r.stderr}`));
  }
}

Deno.test("crash: a SIGKILLed memsnap snapshot never leaves a listed partial or corrupt bundle", async () => {
  const f = await mem();
  const args = ["snapshot", ...f.base, ...sourceFlags(f.mem), "--no-redact", "--json"];
  // The snapshots' capture staging goes to a temp dir of this test's own, checked at the end.
  const tmpdir = join(f.mem.home, "tmp");
  await Deno.mkdir(tmpdir);
  const env = { TMPDIR: tmpdir };
  // One complete run to learn how long a snapshot takes here.
  const t0 = performance.now();
  const first = await memsnap(args, env);
  assertEquals(first.code, 0, first.stderr);
  const duration = performance.now() - t0;
  const tmp = join(f.store, ".tmp");
  let partialSeen = 0;
  let killedLive = 0;
  for (let i = 0; i < SNAPSHOT_KILLS; i++) {
    const child = spawnCli(args, env);
    let exited = false;
    child.status.then(() => (exited = true));
    if (i % 2 === 0) {
      // At a random time.
      await sleep(duration * (0.25 + 0.85 * rand()));
    } else {
      // While the bundle is being written: timed from the `.partial` file's appearance.
      const deadline = performance.now() + 60_000;
      while (!exited && !(await hasPartial(tmp)) && performance.now() < deadline) await sleep(5);
      await sleep(rand() * 150);
    }
    if (await hasPartial(tmp)) partialSeen++;
    if (await kill(child)) killedLive++;
    await listRows(f);
  }
  // The next snapshot recovers the dead processes' lock and works.
  const after = await memsnap([...args, "--lock-timeout", "30"], env);
  assertEquals(after.code, 0, after.stderr);
  // ...and removes the staging dirs the killed ones left.
  const staged: string[] = [];
  for await (const e of Deno.readDir(tmpdir)) staged.push(e.name);
  assertEquals(staged, [], "capture staging left behind by killed snapshots");
  const rows = await listRows(f);
  assert(rows.length >= 2);
  await verifyAll(f, rows.map((r) => r.id));
  console.log(
    `crash: ${killedLive}/${SNAPSHOT_KILLS} snapshots killed mid-run (snapshot ~${
      duration.toFixed(0)
    } ms), ${partialSeen} partial file(s) seen, ${rows.length} complete bundle(s) listed`,
  );
});

Deno.test("crash: a SIGKILLed memsnap restore is entirely old or entirely restored after recovery", async () => {
  const f = await mem();
  const flags = [...f.base, ...sourceFlags(f.mem)];
  const snap = async (): Promise<string> => {
    const r = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    return (r.json as { id: string }).id;
  };
  // Two states: A (as generated) and B (after a dream), each with its snapshot.
  const idA = await snap();
  const fpA = await fingerprint(f.mem);
  await dream(f.mem, 1);
  const idB = await snap();
  const fpB = await fingerprint(f.mem);
  assert(JSON.stringify(fpA) !== JSON.stringify(fpB));
  const state = (fp: Record<string, string>): "A" | "B" | "mixed" =>
    JSON.stringify(fp) === JSON.stringify(fpA)
      ? "A"
      : JSON.stringify(fp) === JSON.stringify(fpB)
      ? "B"
      : "mixed";
  const journal = join(f.store, "default", "a1", ".state", "restore-journal.json");
  let live: "A" | "B" = "B";
  const outcomes: string[] = [];
  for (let i = 0; i < RESTORE_KILLS; i++) {
    const target = live === "A" ? idB : idA;
    // Runs 0, 4, ... take the pre-restore snapshot (old state then removed after commit); the
    // others skip it, so the old state is kept aside (renames after the commit record too).
    const pre = i % 4 === 0 ? [] : ["--no-pre-snapshot"];
    const child = spawnCli(["restore", target, ...flags, ...pre, "--json"], {
      MEMSNAP_TEST_SWAP_DELAY_MS: String(SWAP_DELAY_MS),
    });
    // Kills are timed from the start, from the journal's appearance (staging), or from the
    // journal's "swapping" phase (inside the swap window).
    let exited = false;
    child.status.then(() => (exited = true));
    const deadline = performance.now() + 60_000;
    const when = ["swapping", "staging", "committed", "start"][i % 4]!;
    if (when === "start") {
      await sleep(500 + rand() * 3000);
    } else {
      while (!exited && performance.now() < deadline) {
        const text = await Deno.readTextFile(journal).catch(() => "");
        if (text && (when === "staging" || text.includes(`"phase": "${when}"`))) break;
        if (when === "swapping" && text.includes(`"phase": "committed"`)) break;
        await sleep(5);
      }
      await sleep(rand() * SWAP_DELAY_MS * (when === "committed" ? 1 : 12));
    }
    const hadJournal = await exists(journal);
    const killed = await kill(child);
    // Recover with `memsnap recover`, or let the next command (a snapshot) do it.
    let how: string;
    if (i % 2 === 0) {
      const r = await memsnap(["recover", ...f.base, "--json"]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      how = `recover:${(r.json as { outcome: string }).outcome}`;
    } else {
      const r = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      how = "snapshot";
    }
    assert(!(await exists(journal)), "the journal is gone after recovery");
    const fp = await fingerprint(f.mem);
    const now = state(fp);
    if (now === "mixed") {
      const diff = Object.keys({ ...fp, ...fpA }).filter((k) =>
        fp[k] !== (live === "A" ? fpA : fpB)[k]
      );
      throw new Error(
        `run ${i}: live memory is neither the old nor the restored state (${how}); differs from the old in ${
          diff.slice(0, 8).join(", ")
        }`,
      );
    }
    // No extraction left in the state dir (a kill before the restore's cleanup leaves one).
    for await (const e of Deno.readDir(join(f.store, "default", "a1", ".state"))) {
      assert(
        !e.name.startsWith("restore-") || e.name === "restore-journal.json",
        `leftover ${e.name} after ${how}`,
      );
    }
    // No staging or old-state leftovers beside the targets.
    for (const dir of [f.mem.home, join(f.mem.home, "db"), join(f.mem.home, "state")]) {
      for await (const e of Deno.readDir(dir)) {
        assert(
          !e.name.startsWith(".memsnap-stage-") && !e.name.startsWith(".memsnap-old-"),
          `leftover ${join(dir, e.name)} after ${how}`,
        );
      }
    }
    outcomes.push(
      `${when}:${killed ? "killed" : "finished"}${
        hadJournal ? "+journal" : ""
      }:${how}:${live}->${now}`,
    );
    live = now;
  }
  console.log(`crash: restore kills: ${outcomes.join(" ")}`);
  // The store is still consistent: every listed bundle verifies.
  const rows = await listRows(f);
  await verifyAll(f, rows.map((r) => r.id));
});

Deno.test("crash: cleanup", async () => {
  await shared?.[Symbol.asyncDispose]();
});

Deno.test("crash: a restore that dies right after its commit record keeps absent files aside once recovered", async () => {
  await using f = await fixture({ prefix: "memsnap-crash-commit-", notes: 6, facts: 20 });
  const store = await openStore(f.store);
  try {
    let dead = false;
    const die = (): Promise<never> => Promise.reject(new Error("killed"));
    // The process "dies" just after the journal's committed phase is durable.
    const dying: SwapFs = {
      rename: (a, b) => dead ? die() : realSwapFs.rename(a, b),
      remove: (p) => dead ? die() : realSwapFs.remove(p),
      mkdir: (p) => dead ? die() : realSwapFs.mkdir(p),
      exists: (p) => dead ? die() : realSwapFs.exists(p),
      syncDir: (p) => dead ? die() : realSwapFs.syncDir(p),
      readText: (p) => dead ? die() : realSwapFs.readText(p),
      async writeFileAtomic(p, d) {
        if (dead) return die();
        await realSwapFs.writeFileAtomic(p, d);
        if (d.includes('"phase": "committed"')) {
          dead = true;
          return die();
        }
      },
    };
    const captures = [
      memdirPlugin({ dir: f.mem.memdir }),
      gitPlugin({ dir: f.mem.memdir }),
      sqlitePlugin({ databases: f.mem.sqlite }),
      statePlugin({ files: f.mem.state }),
    ];
    const snap = createSnapshotter({ store, agent: "a1", captures, swapFs: dying });
    const a = await snap.snapshot();
    const fpA = await fingerprint(f.mem);
    await dream(f.mem);
    // The dream wrote a note that snapshot A does not have.
    const added = "notes/consolidated-1.md";
    await Deno.lstat(join(f.mem.memdir, added));
    await assertRejects(() => snap.restore(a.info.id));
    assert(dead, "the swap reached its commit record");
    // A new process recovers: the restore is completed.
    const fresh = createSnapshotter({ store, agent: "a1", captures });
    const r = await fresh.recover();
    assertEquals(r.outcome, "completed");
    assertEquals(await fingerprint(f.mem), fpA);
    // As after an uninterrupted restore, the file absent from the snapshot is kept aside,
    // outside the memory dir, not deleted.
    const aside = join(
      f.mem.home,
      ".memsnap-aside",
      r.journal!.restore_id,
      "memory",
      added,
    );
    assert(
      await Deno.lstat(aside).then(() => true, () => false),
      `${added} was deleted by recovery instead of being kept at ${aside}`,
    );
  } finally {
    await store.close();
  }
});
