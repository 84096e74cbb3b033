import { assert, assertEquals, assertRejects } from "./tests/_assert.ts";
import { join } from "node:path";
import {
  type Journal,
  type JournalTarget,
  planTarget,
  readJournal,
  realSwapFs,
  recoverSwap,
  runSwap,
  stagedPath,
  type SwapFs,
  writeJournal,
} from "./_swap.ts";

async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const abs = join(dir, e.name), r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(abs, r);
      else out[r] = await Deno.readTextFile(abs);
    }
  };
  await walk(root, "");
  return out;
}

/** Live state: a memory dir, a database file with a -wal companion, and a state file. */
async function setup(): Promise<{ root: string; journal: Journal; stateDir: string }> {
  const root = await Deno.makeTempDir({ prefix: "swap-test-" });
  await Deno.mkdir(join(root, "mem/sub"), { recursive: true });
  await Deno.writeTextFile(join(root, "mem/a.md"), "old a");
  await Deno.writeTextFile(join(root, "mem/sub/b.md"), "old b");
  await Deno.writeTextFile(join(root, "db.sqlite"), "old db");
  await Deno.writeTextFile(join(root, "db.sqlite-wal"), "old wal");
  const stateDir = join(root, "state");
  const targets: JournalTarget[] = [];
  const journal: Journal = {
    version: 1,
    restore_id: "r1",
    tenant: "default",
    agent_id: "a",
    snapshot_id: "s",
    pre_snapshot_id: null,
    started_at: new Date().toISOString(),
    phase: "staging",
    keep_old: true,
    targets,
  };
  await writeJournal(realSwapFs, stateDir, journal);
  const specs = [
    { path: join(root, "mem"), type: "dir" as const },
    {
      path: join(root, "db.sqlite"),
      type: "file" as const,
      companions: [join(root, "db.sqlite-wal")],
    },
    { path: join(root, "cursor.json"), type: "file" as const }, // does not exist yet
  ];
  for (const [i, s] of specs.entries()) {
    const t: JournalTarget = {
      ...planTarget(s, "r1", i),
      existed: await realSwapFs.exists(s.path),
    };
    await Deno.mkdir(t.stageDir, { recursive: true });
    targets.push(t);
    await writeJournal(realSwapFs, stateDir, journal);
  }
  await Deno.mkdir(stagedPath(targets[0]!));
  await Deno.writeTextFile(join(stagedPath(targets[0]!), "a.md"), "new a");
  await Deno.writeTextFile(join(stagedPath(targets[0]!), "c.md"), "new c");
  await Deno.writeTextFile(stagedPath(targets[1]!), "new db");
  await Deno.writeTextFile(stagedPath(targets[2]!), "new cursor");
  return { root, journal, stateDir };
}

const OLD = {
  "mem/a.md": "old a",
  "mem/sub/b.md": "old b",
  "db.sqlite": "old db",
  "db.sqlite-wal": "old wal",
};
const NEW = {
  "mem/a.md": "new a",
  "mem/c.md": "new c",
  "db.sqlite": "new db",
  "cursor.json": "new cursor",
};

/** The live files only (ignores memsnap's own hidden dirs and the state dir). */
async function live(root: string): Promise<Record<string, string>> {
  const all = await tree(root);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) {
    if (k.startsWith(".memsnap-") || k.startsWith("state/")) continue;
    out[k] = v;
  }
  return out;
}

/** A SwapFs that throws at the n-th mutating operation; with `crash`, every later op fails too. */
function faulty(n: number, crash: boolean): SwapFs & { ops: number } {
  let ops = 0;
  let dead = false;
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>, mutating: boolean) =>
    (...a: A): Promise<R> => {
      if (dead) return Promise.reject(new Error("process is dead"));
      if (mutating && ++ops === n) {
        if (crash) dead = true;
        return Promise.reject(new Error(`injected fault at op ${n}`));
      }
      return f(...a);
    };
  const fs = {
    rename: wrap(realSwapFs.rename, true),
    remove: wrap(realSwapFs.remove, true),
    mkdir: wrap(realSwapFs.mkdir, true),
    exists: wrap(realSwapFs.exists, false),
    syncDir: wrap(realSwapFs.syncDir, false),
    writeFileAtomic: wrap(realSwapFs.writeFileAtomic, true),
    readText: wrap(realSwapFs.readText, false),
    get ops() {
      return ops;
    },
  };
  return fs;
}

Deno.test("runSwap() places every staged target and keeps the old state aside", async () => {
  const { root, journal, stateDir } = await setup();
  try {
    const r = await runSwap(realSwapFs, stateDir, journal);
    assertEquals(await live(root), NEW);
    assertEquals(r.aside.length, 2); // mem and db existed; cursor did not
    const aside = await tree(join(root, ".memsnap-aside"));
    assertEquals(aside["r1/mem/t/sub/b.md"], "old b");
    assertEquals(aside["r1/db.sqlite/c-db.sqlite-wal"], "old wal");
    assertEquals(await readJournal(realSwapFs, stateDir), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("runSwap() rolls every target back when any step fails", async () => {
  // Count the mutating operations of a full swap, then inject a fault at each one before commit.
  const probe = await setup();
  const counter = faulty(Number.MAX_SAFE_INTEGER, false);
  await runSwap(counter, probe.stateDir, probe.journal);
  await Deno.remove(probe.root, { recursive: true });
  let beforeCommit = 0;
  for (let n = 1; n <= counter.ops; n++) {
    const { root, journal, stateDir } = await setup();
    try {
      const fs = faulty(n, false);
      let failed = false;
      try {
        await runSwap(fs, stateDir, journal);
      } catch {
        failed = true;
      }
      assert(failed, `fault at op ${n} went unnoticed`);
      const j = await readJournal(realSwapFs, stateDir);
      if (j?.phase === "committed") {
        // A fault after commit (cleanup): everything is new; recover finishes cleanup.
        assertEquals(await live(root), NEW, `fault at op ${n}`);
      } else {
        // A fault before commit: everything is old.
        assertEquals(await live(root), OLD, `fault at op ${n}`);
        beforeCommit++;
      }
      await recoverSwap(realSwapFs, stateDir);
      assertEquals(await live(root), j?.phase === "committed" ? NEW : OLD);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
  assert(beforeCommit >= 6, `only ${beforeCommit} faults hit before commit`);
});

Deno.test("recoverSwap() after a crash at any step leaves entirely old or entirely new state", async () => {
  const probe = await setup();
  const counter = faulty(Number.MAX_SAFE_INTEGER, false);
  await runSwap(counter, probe.stateDir, probe.journal);
  await Deno.remove(probe.root, { recursive: true });
  const outcomes = new Set<string>();
  for (let n = 1; n <= counter.ops; n++) {
    const { root, journal, stateDir } = await setup();
    try {
      await assertRejects(() => runSwap(faulty(n, true), stateDir, journal));
      const r = await recoverSwap(realSwapFs, stateDir);
      outcomes.add(r.outcome);
      const state = await live(root);
      if (r.outcome === "completed") assertEquals(state, NEW, `crash at op ${n}`);
      else assertEquals(state, OLD, `crash at op ${n} (${r.outcome})`);
      // No staging or old dirs are left behind.
      const leftovers = [...Deno.readDirSync(root)].map((e) => e.name).filter((x) =>
        x.startsWith(".memsnap-stage") || x.startsWith(".memsnap-old")
      );
      assertEquals(leftovers, [], `crash at op ${n}`);
      assertEquals((await recoverSwap(realSwapFs, stateDir)).outcome, "none");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }
  assert(outcomes.has("rolled_back") && outcomes.has("completed"), [...outcomes].join(","));
});
