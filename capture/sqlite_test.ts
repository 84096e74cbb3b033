import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { NotFoundError, UsageError } from "../errors.ts";
import { sqlitePlugin } from "./sqlite.ts";
import {
  copyDatabase,
  patchHeader,
  releaseHold,
  sqliteCopyInternals,
  vacuumAndDescribe,
} from "./_sqlite_copy.ts";
import { captureInto, fakeRedactor, restoreInto } from "../tests/capture_helpers.ts";
import { tempDir } from "../tests/_tools.ts";
import { noopProgress } from "../progress.ts";
import type { JsonValue, Manifest, RedactionReport } from "../bundle/types.ts";
import { createRedactor, type RedactorWithStats } from "../redact/create_redactor.ts";
import { loadPacks } from "../redact/load_pack.ts";
import type { RulePack } from "../redact/types.ts";

function makeDb(path: string, wal: boolean, userVersion = 3): void {
  const db = new DatabaseSync(path);
  if (wal) db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA user_version = ${userVersion};
    CREATE TABLE facts(id INTEGER PRIMARY KEY, body TEXT, data BLOB);
    CREATE INDEX facts_body ON facts(body);
    CREATE VIRTUAL TABLE facts_fts USING fts5(body);`);
  const ins = db.prepare("INSERT INTO facts(body, data) VALUES (?, ?)");
  for (let i = 0; i < 50; i++) {
    ins.run(`fact ${i}${i === 7 ? " SECRET123" : ""}`, new Uint8Array([i, 0]));
  }
  db.exec("INSERT INTO facts_fts(body) SELECT body FROM facts");
  db.close();
}

function dump(path: string): unknown {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return {
      facts: db.prepare("SELECT * FROM facts ORDER BY id").all(),
      fts: db.prepare("SELECT body FROM facts_fts WHERE facts_fts MATCH 'fact' ORDER BY rowid")
        .all(),
      user_version: db.prepare("PRAGMA user_version").get(),
      journal_mode: db.prepare("PRAGMA journal_mode").get(),
    };
  } finally {
    db.close();
  }
}

Deno.test("sqlitePlugin() captures a consistent copy with metadata and restores it with its journal mode", async () => {
  await using tmp = await tempDir();
  const wal = `${tmp.path}/long_term.db`;
  const plain = `${tmp.path}/short_term.db`;
  makeDb(wal, true, 5);
  makeDb(plain, false, 2);
  // keep a connection open so the WAL holds uncheckpointed frames
  const holder = new DatabaseSync(wal);
  holder.exec("INSERT INTO facts(body) VALUES ('only in the wal')");
  const plugin = sqlitePlugin({ databases: { long_term: wal, short_term: plain } });
  const captured = await captureInto(tmp.path, [plugin]);
  assert.deepEqual(captured.manifest.artifacts.map((a) => [a.path, a.kind]), [
    ["sqlite/long_term.sqlite", "sqlite"],
    ["sqlite/short_term.sqlite", "sqlite"],
  ]);
  const meta = (captured.manifest.captures.sqlite as {
    databases: Record<string, Record<string, unknown>>;
  }).databases;
  assert.equal(meta.long_term!.user_version, 5);
  assert.equal(meta.long_term!.journal_mode, "wal");
  assert.equal(meta.short_term!.journal_mode, "delete");
  assert.equal((meta.long_term!.tables as Record<string, number>).facts, 51);
  assert.match(meta.long_term!.schema_sha256 as string, /^[0-9a-f]{64}$/);
  assert.equal(meta.long_term!.schema_sha256, meta.short_term!.schema_sha256);
  const want = dump(wal);
  holder.close();

  const { staged, targets } = await restoreInto(tmp.path, [plugin], captured);
  assert.deepEqual(targets.find((t) => t.path === wal)?.companions, [
    `${wal}-wal`,
    `${wal}-shm`,
    `${wal}-journal`,
  ]);
  assert.deepEqual(dump(staged.get(wal)!), want);
  assert.deepEqual(dump(staged.get(plain)!), dump(plain));
});

Deno.test("sqlitePlugin() restore() switches a WAL database without fsync to the same bytes as SQLite's default", async () => {
  await using tmp = await tempDir();
  const wal = `${tmp.path}/long_term.db`;
  makeDb(wal, true, 5);
  const plugin = sqlitePlugin({ databases: { long_term: wal } });
  const captured = await captureInto(tmp.path, [plugin]);
  // The reference: the payload's copy switched with the default synchronous=FULL.
  const ref = `${tmp.path}/ref.db`;
  await Deno.copyFile(`${captured.payloadDir}/sqlite/long_term.sqlite`, ref);
  const d = new DatabaseSync(ref);
  d.exec("PRAGMA journal_mode = WAL");
  d.close();
  const { staged } = await restoreInto(tmp.path, [plugin], captured);
  const got = await Deno.readFile(staged.get(wal)!);
  assert.deepEqual(got, await Deno.readFile(ref));
  assert.equal(got[18], 2); // WAL: file format write and read versions 2
  assert.equal(got[19], 2);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(`${tmp.path}/staged`))).map((e) => e.name), [
    "0-long_term.db",
  ]);
});

Deno.test("sqlitePlugin() check() refuses a user_version newer than the runtime supports", async () => {
  await using tmp = await tempDir();
  makeDb(`${tmp.path}/a.db`, false, 7);
  const captured = await captureInto(tmp.path, [
    sqlitePlugin({ databases: { long_term: `${tmp.path}/a.db` } }),
  ]);
  const gate = sqlitePlugin({ databases: { long_term: `${tmp.path}/a.db` }, maxUserVersion: 5 });
  assert.deepEqual(gate.check!(captured.manifest), [
    "Cannot restore database long_term: its user_version 7 is newer than the 5 this runtime supports",
  ]);
  const perDb = sqlitePlugin({
    databases: { long_term: `${tmp.path}/a.db` },
    maxUserVersion: { long_term: 7 },
  });
  assert.deepEqual(perDb.check!(captured.manifest), []);
});

Deno.test("sqlitePlugin() names a missing database and rejects bad names", async () => {
  await using tmp = await tempDir();
  const plugin = sqlitePlugin({ databases: { long_term: `${tmp.path}/missing.db` } });
  await assert.rejects(() => captureInto(tmp.path, [plugin]), (e: unknown) => {
    assert(e instanceof NotFoundError);
    assert.match(e.message, /database long_term: .*missing\.db does not exist/);
    return true;
  });
  await assert.rejects(Deno.stat(`${tmp.path}/missing.db`), Deno.errors.NotFound);
  assert.throws(() => sqlitePlugin({ databases: { "Bad Name": "x" } }), UsageError);
});

Deno.test("sqlitePlugin() redacts the copy and leaves no secret in its pages", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/a.db`;
  makeDb(path, true);
  const captured = await captureInto(
    tmp.path,
    [sqlitePlugin({ databases: { mem: path } })],
    fakeRedactor(),
  );
  const bytes = await Deno.readFile(`${captured.payloadDir}/sqlite/mem.sqlite`);
  assert(!new TextDecoder("latin1").decode(bytes).toLowerCase().includes("secret123"));
  const live = new DatabaseSync(path, { readOnly: true });
  assert.equal(
    (live.prepare("SELECT count(*) n FROM facts WHERE body LIKE '%SECRET123%'").get() as {
      n: number;
    })
      .n,
    1,
  );
  live.close();
});

Deno.test("sqlitePlugin() leaves the live database and its directory unchanged", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/live/a.db`;
  await Deno.mkdir(`${tmp.path}/live`);
  makeDb(path, true);
  const before = await Deno.readFile(path);
  const names = async () =>
    (await Array.fromAsync(Deno.readDir(`${tmp.path}/live`))).map((e) => e.name).sort();
  const listed = await names();
  await captureInto(tmp.path, [sqlitePlugin({ databases: { a: path } })]);
  assert.deepEqual(await Deno.readFile(path), before);
  assert.deepEqual(await names(), listed);
  // with a live WAL (a writer holds the database open): nothing is checkpointed
  const holder = new DatabaseSync(path);
  holder.exec("INSERT INTO facts(body) VALUES ('pending in the wal')");
  const db = await Deno.readFile(path);
  const wal = await Deno.readFile(`${path}-wal`);
  await using tmp2 = await tempDir();
  const captured = await captureInto(tmp2.path, [sqlitePlugin({ databases: { a: path } })]);
  assert.deepEqual(await Deno.readFile(path), db);
  assert.deepEqual(await Deno.readFile(`${path}-wal`), wal);
  const meta = captured.manifest.captures.sqlite as {
    databases: { a: { tables: { facts: number } } };
  };
  assert.equal(meta.databases.a.tables.facts, 51);
  holder.close();
});

Deno.test("sqlitePlugin() plan() shows the user_version change and leaves no stray files", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/live/a.db`;
  await Deno.mkdir(`${tmp.path}/live`);
  makeDb(path, true, 4);
  const plugin = sqlitePlugin({ databases: { a: path } });
  const captured = await captureInto(tmp.path, [plugin]);
  const db = new DatabaseSync(path);
  db.exec("PRAGMA user_version = 6");
  db.close();
  const plan = await plugin.plan!({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts,
    signal: new AbortController().signal,
    progress: { progress() {}, warn() {} },
  });
  assert.deepEqual(plan, [{
    target: path,
    action: "replace database",
    detail: "user_version 6 → 4",
  }]);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(`${tmp.path}/live`))).map((e) => e.name), [
    "a.db",
  ]);
});

Deno.test("sqlitePlugin() copies in a worker with the same bytes and metadata as in-thread, also redacted", async () => {
  await using tmp = await tempDir();
  const wal = `${tmp.path}/wal.db`;
  const plain = `${tmp.path}/plain.db`;
  makeDb(wal, true, 5);
  makeDb(plain, false, 2);
  const holder = new DatabaseSync(wal);
  holder.exec("INSERT INTO facts(body) VALUES ('only in the wal')");
  const plugin = sqlitePlugin({ databases: { wal, plain } });
  const run = async (workerMinBytes: number, dir: string, redact: boolean) => {
    const saved = sqliteCopyInternals.workerMinBytes;
    sqliteCopyInternals.workerMinBytes = workerMinBytes;
    try {
      const c = await captureInto(
        `${tmp.path}/${dir}`,
        [plugin],
        redact ? fakeRedactor() : undefined,
      );
      return { meta: c.manifest.captures, artifacts: c.manifest.artifacts };
    } finally {
      sqliteCopyInternals.workerMinBytes = saved;
    }
  };
  try {
    for (const redact of [false, true]) {
      const inThread = await run(Infinity, `in-${redact}`, redact);
      const inWorker = await run(0, `worker-${redact}`, redact);
      assert.deepEqual(inWorker, inThread);
      // an unchanged database gives the same bytes again
      assert.deepEqual(await run(0, `again-${redact}`, redact), inThread);
    }
  } finally {
    holder.close();
  }
});

/** A real redactor of the default packs, counting the redactSqlite calls made on it here. */
async function countingRedactor(
  packs?: RulePack[],
): Promise<RedactorWithStats & { sqliteCalls: number }> {
  const r = createRedactor({
    packs: packs ?? await loadPacks("secrets,pii"),
    key: new Uint8Array(32).fill(9),
  });
  const counting = {
    sqliteCalls: 0,
    get replacements() {
      return r.replacements;
    },
    redactString: (t: string, a: string) => r.redactString(t, a),
    redactBytes: (b: Uint8Array, a: string) => r.redactBytes(b, a),
    redactFile: (s: string, d: string, a: string) => r.redactFile(s, d, a),
    redactJson: (v: JsonValue, a: string) => r.redactJson(v, a),
    redactSqlite: (p: string, a: string, o?: { vacuum?: boolean }) => {
      counting.sqliteCalls++;
      return r.redactSqlite(p, a, o);
    },
    report: () => r.report(),
    portable: () => r.portable(),
    absorb: (report: RedactionReport) => r.absorb(report),
  };
  return counting;
}

function makeSecretDb(path: string, wal: boolean): void {
  const db = new DatabaseSync(path);
  if (wal) db.exec("PRAGMA journal_mode = WAL");
  db.exec(`PRAGMA user_version = 4;
    CREATE TABLE facts(id INTEGER PRIMARY KEY, body TEXT, data BLOB);
    CREATE VIRTUAL TABLE facts_fts USING fts5(body);`);
  const ins = db.prepare("INSERT INTO facts(body, data) VALUES (?, ?)");
  for (let i = 0; i < 200; i++) {
    const body = i % 20 === 3
      ? `note ${i}: password=Hunter2Hunter2x${i} mail jane${i}@acme.io`
      : `note ${i}: nothing to see`;
    ins.run(body, new TextEncoder().encode(i % 50 === 7 ? `key ghp_${"a1B2".repeat(9)}` : "x"));
  }
  db.exec("INSERT INTO facts_fts(body) SELECT body FROM facts");
  db.close();
}

Deno.test("sqlitePlugin() redacts on a worker with a portable redactor: the same bytes, metadata and report as here", async () => {
  await using tmp = await tempDir();
  const wal = `${tmp.path}/wal.db`;
  const plain = `${tmp.path}/plain.db`;
  makeSecretDb(wal, true);
  makeSecretDb(plain, false);
  const plugin = sqlitePlugin({ databases: { wal, plain } });
  const run = async (redactWorkerMinBytes: number, dir: string) => {
    const saved = sqliteCopyInternals.redactWorkerMinBytes;
    sqliteCopyInternals.redactWorkerMinBytes = redactWorkerMinBytes;
    try {
      const redactor = await countingRedactor();
      const c = await captureInto(`${tmp.path}/${dir}`, [plugin], redactor);
      const bytes = await Deno.readFile(`${c.payloadDir}/sqlite/wal.sqlite`);
      assert(!new TextDecoder("latin1").decode(bytes).includes("Hunter2Hunter2"));
      return {
        calls: redactor.sqliteCalls,
        report: redactor.report(),
        replacements: redactor.replacements,
        manifest: { meta: c.manifest.captures, artifacts: c.manifest.artifacts },
      };
    } finally {
      sqliteCopyInternals.redactWorkerMinBytes = saved;
    }
  };
  const here = await run(Infinity, "here");
  const aside = await run(0, "aside");
  assert.equal(here.calls, 2);
  assert.equal(aside.calls, 0); // both redacted on the worker
  assert(here.replacements >= 20, `${here.replacements} replacements`);
  assert.deepEqual(aside.report, here.report);
  assert.equal(aside.replacements, here.replacements);
  assert.deepEqual(aside.manifest, here.manifest);
  // Above the copy workers' threshold, databases are redacted here (their copy workers' heaps).
  const saved = sqliteCopyInternals.workerMinBytes;
  sqliteCopyInternals.workerMinBytes = 0;
  try {
    const large = await run(0, "large");
    assert.equal(large.calls, 2);
    assert.deepEqual(large.manifest, here.manifest);
  } finally {
    sqliteCopyInternals.workerMinBytes = saved;
  }
});

Deno.test("sqlitePlugin() redacts here when a pack was made in code (the worker cannot load it)", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/a.db`;
  makeSecretDb(path, false);
  const saved = sqliteCopyInternals.redactWorkerMinBytes;
  sqliteCopyInternals.redactWorkerMinBytes = 0;
  try {
    const inCode: RulePack = {
      id: "mine",
      version: "1",
      rules: [{ id: "hunter", description: "a password", pattern: /Hunter2Hunter2x\d+/ }],
    };
    const redactor = await countingRedactor([inCode]);
    assert.equal(redactor.portable(), undefined);
    const c = await captureInto(tmp.path, [sqlitePlugin({ databases: { a: path } })], redactor);
    assert.equal(redactor.sqliteCalls, 1);
    assert.deepEqual(redactor.report().rules.map((r) => [r.id, r.count]), [["hunter", 20]]);
    const bytes = await Deno.readFile(`${c.payloadDir}/sqlite/a.sqlite`);
    assert(!new TextDecoder("latin1").decode(bytes).includes("Hunter2Hunter2"));
  } finally {
    sqliteCopyInternals.redactWorkerMinBytes = saved;
  }
});

Deno.test("sqlitePlugin() in a worker reports a database it cannot read as a UsageError", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/bad.db`;
  // a valid header followed by garbage: SQLite refuses it
  const bytes = new Uint8Array(8192).fill(0xa5);
  bytes.set(new TextEncoder().encode("SQLite format 3\0"));
  await Deno.writeFile(path, bytes);
  const saved = sqliteCopyInternals.workerMinBytes;
  sqliteCopyInternals.workerMinBytes = 0;
  try {
    await assert.rejects(
      () => captureInto(tmp.path, [sqlitePlugin({ databases: { bad: path } })]),
      (e: unknown) => {
        assert(e instanceof UsageError, String(e));
        assert.match(e.message, /^Cannot capture database bad: /);
        return true;
      },
    );
  } finally {
    sqliteCopyInternals.workerMinBytes = saved;
  }
});

Deno.test("sqlitePlugin() rolls back a hot journal left by a crashed writer before copying (rollback mode)", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/a.db`;
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)");
  const ins = db.prepare("INSERT INTO t(body) VALUES (?)");
  db.exec("BEGIN");
  for (let i = 0; i < 20000; i++) ins.run(`original ${"x".repeat(180)} ${i}`);
  db.exec("COMMIT");
  // A writer's transaction spills changed pages into the database file; copying the file and
  // its journal meanwhile gives the state a crash leaves behind: a hot journal.
  db.exec("PRAGMA cache_size = 10; BEGIN; UPDATE t SET body = 'changed'");
  await Deno.mkdir(`${tmp.path}/crashed`);
  const crashed = `${tmp.path}/crashed/a.db`;
  await Deno.copyFile(path, crashed);
  await Deno.copyFile(`${path}-journal`, `${crashed}-journal`);
  db.exec("ROLLBACK");
  db.close();
  assert(new TextDecoder("latin1").decode(await Deno.readFile(crashed)).includes("changed"));
  const captured = await captureInto(`${tmp.path}/cap`, [
    sqlitePlugin({ databases: { a: crashed } }),
  ]);
  const copy = new DatabaseSync(`${captured.payloadDir}/sqlite/a.sqlite`, { readOnly: true });
  try {
    assert.deepEqual(
      { ...copy.prepare("SELECT count(*) AS n, sum(body = 'changed') AS c FROM t").get() },
      { n: 20000, c: 0 },
    );
  } finally {
    copy.close();
  }
  // the journal was rolled back into the live file, as any SQLite connection would
  assert.deepEqual(
    (await Array.fromAsync(Deno.readDir(`${tmp.path}/crashed`))).map((e) => e.name),
    ["a.db"],
  );
});

Deno.test("sqlitePlugin() leaves a rollback-mode database and its directory unchanged", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/live/a.db`;
  await Deno.mkdir(`${tmp.path}/live`);
  makeDb(path, false);
  const before = await Deno.readFile(path);
  await captureInto(tmp.path, [sqlitePlugin({ databases: { a: path } })]);
  assert.deepEqual(await Deno.readFile(path), before);
  assert.deepEqual((await Array.fromAsync(Deno.readDir(`${tmp.path}/live`))).map((e) => e.name), [
    "a.db",
  ]);
});

/** Restores the captured databases with `payloadMovable` into stage paths under `stageRoot`. */
async function restoreMovable(
  plugin: ReturnType<typeof sqlitePlugin>,
  captured: { manifest: Manifest; payloadDir: string },
  stageRoot: string,
  movable: boolean,
): Promise<Map<string, string>> {
  const staged = new Map<string, string>();
  let n = 0;
  await plugin.restore({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts.filter((a) => plugin.owns(a.path)),
    payloadDir: captured.payloadDir,
    payloadMovable: movable,
    stage: async (t) => {
      const dir = `${stageRoot}/${n++}`;
      await Deno.mkdir(dir, { recursive: true });
      staged.set(t.path, `${dir}/t`);
      return `${dir}/t`;
    },
    signal: new AbortController().signal,
    progress: noopProgress,
  });
  return staged;
}

Deno.test("sqlitePlugin() restore() moves a movable payload's database into staging, copies otherwise", async () => {
  await using tmp = await tempDir();
  const wal = `${tmp.path}/long_term.db`;
  const plain = `${tmp.path}/short_term.db`;
  makeDb(wal, true, 5);
  makeDb(plain, false, 2);
  const plugin = sqlitePlugin({ databases: { long_term: wal, short_term: plain } });
  const captured = await captureInto(tmp.path, [plugin]);
  const payload = (name: string) => `${captured.payloadDir}/sqlite/${name}.sqlite`;
  const bytes = await Deno.readFile(payload("short_term"));

  const copied = await restoreMovable(plugin, captured, `${tmp.path}/copy`, false);
  assert.deepEqual(await Deno.readFile(payload("short_term")), bytes, "payload left intact");
  assert.deepEqual(dump(copied.get(wal)!), dump(wal));
  assert.deepEqual(dump(copied.get(plain)!), dump(plain));

  const moved = await restoreMovable(plugin, captured, `${tmp.path}/move`, true);
  for (const name of ["long_term", "short_term"]) {
    await assert.rejects(() => Deno.lstat(payload(name)), Deno.errors.NotFound);
  }
  assert.deepEqual(dump(moved.get(wal)!), dump(wal)); // journal mode "wal" included
  assert.deepEqual(await Deno.readFile(moved.get(plain)!), bytes);
  assert.equal((await Deno.stat(moved.get(plain)!)).mode! & 0o777, 0o644);
});

Deno.test("sqlitePlugin() restore() copies a movable payload's database across file systems (EXDEV)", async (t) => {
  const shm = "/dev/shm";
  const other = await Deno.stat(shm).catch(() => undefined);
  await using tmp = await tempDir();
  if (!other?.isDirectory || other.dev === (await Deno.stat(tmp.path)).dev) {
    await t.step({
      name: "skipped: no second file system at /dev/shm",
      ignore: true,
      fn: () => {},
    });
    return;
  }
  const plain = `${tmp.path}/short_term.db`;
  makeDb(plain, false, 2);
  const plugin = sqlitePlugin({ databases: { short_term: plain } });
  const captured = await captureInto(tmp.path, [plugin]);
  const stageRoot = await Deno.makeTempDir({ dir: shm, prefix: "memsnap-test-" });
  try {
    const staged = await restoreMovable(plugin, captured, stageRoot, true);
    assert.deepEqual(dump(staged.get(plain)!), dump(plain));
  } finally {
    await Deno.remove(stageRoot, { recursive: true });
  }
});

Deno.test("vacuumAndDescribe() gives the bytes of a journaled VACUUM, leaves no journal and no free page", async () => {
  await using tmp = await tempDir();
  const make = (path: string): void => {
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF");
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); BEGIN");
    const ins = db.prepare("INSERT INTO t(v) VALUES (?)");
    for (let i = 0; i < 2000; i++) ins.run(`row ${i} ${"x".repeat(200)}`);
    db.exec("COMMIT; DELETE FROM t WHERE id % 3 = 0; UPDATE t SET v = 'redacted' WHERE id % 5 = 0");
    db.close();
  };
  const a = `${tmp.path}/a.sqlite`;
  const b = `${tmp.path}/b.sqlite`;
  make(a);
  Deno.copyFileSync(a, b);
  const ref = new DatabaseSync(b);
  ref.exec("PRAGMA synchronous = OFF; PRAGMA journal_mode = DELETE; VACUUM");
  ref.close();
  const meta = vacuumAndDescribe(a, "delete");
  assert.deepEqual(Deno.readFileSync(a), Deno.readFileSync(b));
  assert.equal(meta.journal_mode, "delete");
  assert.deepEqual(meta.tables, { t: 1334 });
  await assert.rejects(() => Deno.stat(`${a}-journal`), Deno.errors.NotFound);
  const db = new DatabaseSync(a);
  const free = db.prepare("PRAGMA freelist_count").get() as { freelist_count: number };
  const mode = db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
  db.close();
  assert.equal(free.freelist_count, 0);
  assert.equal(mode.journal_mode, "delete");
});

/** Rows of `t` in a database file, read through a fresh connection. */
function rows(path: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("SELECT id, v FROM t ORDER BY id").all();
  } finally {
    db.close();
  }
}

Deno.test("copyDatabase() copies the file itself when consistent, and through VACUUM INTO when the WAL holds frames", async () => {
  await using tmp = await tempDir();
  const job = (path: string, copy: string) => ({
    path,
    copy,
    busyMs: 1000,
    readOnly: false,
    describe: true,
  });
  for (const mode of ["wal", "delete"]) {
    const path = `${tmp.path}/${mode}.sqlite`;
    const setup = new DatabaseSync(path);
    setup.exec(`PRAGMA journal_mode = ${mode}; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)`);
    for (let i = 0; i < 200; i++) setup.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
    setup.exec("DELETE FROM t WHERE id % 3 = 0"); // free pages, which a file copy keeps
    setup.close(); // (the last connection checkpoints the WAL and removes it)
    const live = Deno.readFileSync(path);
    const r = copyDatabase(job(path, `${tmp.path}/${mode}.copy`));
    assert.equal(r.journalMode, mode);
    const copy = Deno.readFileSync(`${tmp.path}/${mode}.copy`);
    // The file's own pages (the header's journal-mode bytes aside: the copy is set to DELETE).
    assert.equal(copy.length, live.length);
    assert.deepEqual(copy.subarray(100), live.subarray(100));
    assert.deepEqual(rows(`${tmp.path}/${mode}.copy`), rows(path));
    assert.equal(r.meta!.tables.t, 134);
  }
  // A connection kept open with committed frames still in the WAL: the file alone would miss
  // them, so VACUUM INTO copies the transaction's view (a compact file, every committed row).
  const path = `${tmp.path}/busy.sqlite`;
  const writer = new DatabaseSync(path);
  try {
    writer.exec("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0");
    writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    for (let i = 0; i < 50; i++) writer.prepare("INSERT INTO t (v) VALUES (?)").run(`w ${i}`);
    assert.ok(Deno.statSync(`${path}-wal`).size > 0);
    const r = copyDatabase({ ...job(path, `${tmp.path}/busy.copy`), readOnly: true });
    assert.equal(r.journalMode, "wal");
    assert.equal(rows(`${tmp.path}/busy.copy`).length, 50);
    assert.notEqual(Deno.statSync(`${tmp.path}/busy.copy`).size, Deno.statSync(path).size);
  } finally {
    writer.close();
  }
});

Deno.test("copyDatabase() with hold packs a WAL database's own file under a read transaction that writers do not wait for", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/held.sqlite`;
  const setup = new DatabaseSync(path);
  setup.exec("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
  for (let i = 0; i < 300; i++) setup.prepare("INSERT INTO t (v) VALUES (?)").run(`row ${i}`);
  setup.close(); // checkpointed: the WAL is empty
  const before = Deno.readFileSync(path);
  const job = { path, copy: `${tmp.path}/held.copy`, busyMs: 1000, readOnly: false };
  const r = copyDatabase({ ...job, describe: true, hold: true });
  try {
    assert.deepEqual(r.held, { size: before.length });
    assert.equal(r.journalMode, "wal");
    assert.equal(r.meta!.tables.t, 300);
    assert.equal(r.meta!.page_count * r.meta!.page_size, before.length);
    assert.throws(() => Deno.statSync(job.copy), Deno.errors.NotFound); // nothing copied
    // A writer commits while the snapshot is held: into the WAL; the file does not change,
    // even when a checkpoint is asked for (it cannot pass the held reader).
    const writer = new DatabaseSync(path);
    writer.exec("PRAGMA busy_timeout = 0");
    writer.exec("INSERT INTO t (v) VALUES ('after the snapshot')");
    const ck = writer.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
    assert.equal(ck.busy, 1);
    assert.deepEqual(Deno.readFileSync(path), before);
    // What is packed: the file with rollback journal-mode bytes, a valid database by itself.
    const packed = before.slice();
    patchHeader(packed, 0);
    assert.deepEqual([packed[18], packed[19]], [1, 1]);
    assert.deepEqual([before[18], before[19]], [2, 2]);
    Deno.writeFileSync(`${tmp.path}/packed.sqlite`, packed);
    const p = new DatabaseSync(`${tmp.path}/packed.sqlite`, { readOnly: true });
    assert.equal(p.prepare("PRAGMA integrity_check").get()!.integrity_check, "ok");
    assert.equal(p.prepare("PRAGMA journal_mode").get()!.journal_mode, "delete");
    assert.equal((p.prepare("SELECT count(*) n FROM t").get() as { n: number }).n, 300);
    p.close();
    // patchHeader() finds the bytes in any piece of the file.
    const pieces = before.slice(0, 40);
    patchHeader(pieces.subarray(0, 19), 0);
    patchHeader(pieces.subarray(19, 40), 19);
    assert.deepEqual(pieces, packed.subarray(0, 40));
    releaseHold(job.copy);
    // Released: the checkpoint now reaches the file.
    const ck2 = writer.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
    assert.equal(ck2.busy, 0);
    assert.notDeepEqual(Deno.readFileSync(path), before);
    writer.close();
  } finally {
    releaseHold(job.copy); // a second release does nothing
  }
  // Not held: a rollback-journal database (its reader would block writers), or no hold asked.
  const plain = `${tmp.path}/plain.sqlite`;
  const d = new DatabaseSync(plain);
  d.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x')");
  d.close();
  const rp = copyDatabase({
    ...job,
    path: plain,
    copy: `${tmp.path}/plain.copy`,
    describe: true,
    hold: true,
  });
  assert.equal(rp.held, undefined);
  assert.ok(Deno.statSync(`${tmp.path}/plain.copy`).size > 0);
  const rw = copyDatabase({ ...job, copy: `${tmp.path}/nohold.copy`, describe: true });
  assert.equal(rw.held, undefined);
});

Deno.test("sqlitePlugin() packs a held database's file, the same rows as a copy, and releases it when asked", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/wal.db`;
  makeDb(path, true, 5);
  for (const workerMinBytes of [Infinity, 0]) {
    const saved = sqliteCopyInternals.workerMinBytes;
    sqliteCopyInternals.workerMinBytes = workerMinBytes;
    try {
      const plugin = sqlitePlugin({ databases: { a: path } });
      const dir = `${tmp.path}/run-${workerMinBytes}`;
      await Deno.mkdir(`${dir}/staging`, { recursive: true });
      const result = await plugin.capture({
        staging: `${dir}/staging`,
        redactor: undefined,
        signal: new AbortController().signal,
        progress: noopProgress,
      });
      assert.ok(result.release, "held: the plugin has something to release");
      assert.deepEqual([...Deno.readDirSync(`${dir}/staging`)], []); // no copy
      const a = result.artifacts[0]!;
      const live = Deno.readFileSync(path);
      assert.equal(a.size, live.length);
      const streamed = await new Response(await a.open()).bytes();
      const small = new Uint8Array(a.size + 1);
      assert.equal(a.readInto!(small), a.size);
      const want = live.slice();
      patchHeader(want, 0);
      assert.deepEqual(streamed, want);
      assert.deepEqual(small.subarray(0, a.size), want);
      const w = new DatabaseSync(path);
      w.exec("PRAGMA busy_timeout = 0");
      w.exec("INSERT INTO facts(body) VALUES ('while held')"); // not blocked
      assert.equal(
        (w.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number }).busy,
        1,
      );
      await result.release!();
      assert.equal(
        (w.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number }).busy,
        0,
      );
      w.exec("DELETE FROM facts WHERE body = 'while held'");
      w.close();
    } finally {
      sqliteCopyInternals.workerMinBytes = saved;
    }
  }
  // Through captureInto (which releases as the snapshotter does): restorable, same rows.
  const captured = await captureInto(`${tmp.path}/c`, [sqlitePlugin({ databases: { a: path } })]);
  const restored = await restoreInto(
    `${tmp.path}/r`,
    [sqlitePlugin({ databases: { a: path } })],
    captured,
  );
  assert.deepEqual(dump(restored.staged.get(path)!), dump(path));
});

Deno.test("sqlitePlugin() deals many databases out to at most two workers, and releases every hold", async () => {
  await using tmp = await tempDir();
  const dbs: Record<string, string> = {};
  for (let i = 0; i < 5; i++) {
    const path = `${tmp.path}/db${i}.sqlite`;
    makeDb(path, i % 2 === 0, i); // WAL ones are held, the others copied
    dbs[`db${i}`] = path;
  }
  const saved = sqliteCopyInternals.workerMinBytes;
  sqliteCopyInternals.workerMinBytes = 0;
  const created: unknown[] = [];
  const RealWorker = globalThis.Worker;
  globalThis.Worker = class extends RealWorker {
    constructor(url: string | URL, opts?: WorkerOptions) {
      super(url, opts);
      created.push(url);
    }
  };
  try {
    await Deno.mkdir(`${tmp.path}/staging`);
    const result = await sqlitePlugin({ databases: dbs }).capture({
      staging: `${tmp.path}/staging`,
      redactor: undefined,
      signal: new AbortController().signal,
      progress: noopProgress,
    });
    assert.equal(created.length, 2);
    assert.equal(result.artifacts.length, 5);
    for (const a of result.artifacts) {
      const bytes = await new Response(await a.open()).bytes();
      assert.equal(bytes.length, a.size);
    }
    await result.release!();
    for (const [i, path] of Object.values(dbs).entries()) {
      if (i % 2 !== 0) continue;
      const w = new DatabaseSync(path);
      w.exec("PRAGMA busy_timeout = 0; INSERT INTO facts(body) VALUES ('after')");
      const ck = w.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number };
      assert.equal(ck.busy, 0, `db${i} still held`);
      w.close();
    }
  } finally {
    globalThis.Worker = RealWorker;
    sqliteCopyInternals.workerMinBytes = saved;
  }
});
