// redactSqlite(): every table, FTS indexes kept consistent, triggers silent, no secret left.
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createRedactor, piiPack, secretsPack } from "../redact/mod.ts";
import { redactSqliteFile } from "../redact/_sqlite.ts";
import { interopTest, run } from "./_tools.ts";

const KEY = new Uint8Array(32).fill(5);
const SECRET = "ghp_Zq7Xw3Vb9Nm1Kp5Lr8Ts2Uy4Wa6Cd0Ef2Gh4J";
const TAIL = SECRET.slice(4);
const EMAIL = "jane.doe@acme-mail.io";

function makeDb(dir: string): string {
  const path = `${dir}/mem.sqlite`;
  const db = new DatabaseSync(path);
  db.exec(`
    PRAGMA user_version = 7;
    CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT, data BLOB, n INTEGER);
    CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');
    CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
      INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body);
    END;
    CREATE TRIGGER notes_au AFTER UPDATE ON notes BEGIN
      INSERT INTO notes_fts(notes_fts, rowid, body) VALUES('delete', old.id, old.body);
      INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body);
    END;
    CREATE VIRTUAL TABLE memories USING fts5(title, body);
    CREATE VIRTUAL TABLE legacy USING fts4(body);
    CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;
    CREATE TABLE audit(id INTEGER PRIMARY KEY, msg TEXT);
    CREATE TRIGGER kv_au AFTER UPDATE ON kv BEGIN
      INSERT INTO audit(msg) VALUES ('changed ' || old.v);
    END;
    CREATE TABLE loose(x);
  `);
  const ins = db.prepare("INSERT INTO notes(body, data, n) VALUES (?, ?, ?)");
  ins.run(`deploy with ${SECRET} today`, new TextEncoder().encode(`blob ${SECRET}`), 1);
  ins.run("ordinary deploy notes", new Uint8Array([0, 1, 2, 255]), 2);
  ins.run(`mail ${EMAIL} about deploy`, null, 3);
  db.prepare("INSERT INTO memories(title, body) VALUES (?, ?)").run(
    "creds",
    `the token is ${SECRET} keep it`,
  );
  db.prepare("INSERT INTO memories(title, body) VALUES (?, ?)").run("plain", "nothing to hide");
  db.prepare("INSERT INTO legacy(body) VALUES (?)").run(`old note ${SECRET} legacy`);
  db.prepare("INSERT INTO kv VALUES (?, ?)").run("gh", SECRET);
  db.prepare("INSERT INTO loose VALUES (?)").run(`loose ${SECRET}`);
  db.prepare("INSERT INTO loose VALUES (?)").run(42);
  // Leave a deleted secret in a free page, as a live database would.
  db.exec(`CREATE TABLE scratch(t TEXT); INSERT INTO scratch VALUES ('${SECRET} scratch')`);
  db.exec("DROP TABLE scratch");
  db.close();
  return path;
}

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "memsnap_redact_sql_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("redactSqlite() redacts every table, keeps FTS consistent and silences triggers", async () => {
  await withTmp(async (dir) => {
    const path = makeDb(dir);
    const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
    await r.redactSqlite(path, "sqlite/mem.sqlite");
    const db = new DatabaseSync(path);
    try {
      const count = (sql: string, ...args: string[]): number =>
        Number((db.prepare(sql).get(...args) as { c: number }).c);
      // Secret tokens are gone from every FTS index.
      strictEqual(
        count(`SELECT count(*) c FROM notes_fts WHERE notes_fts MATCH ?`, `"${TAIL}"`),
        0,
      );
      strictEqual(count(`SELECT count(*) c FROM memories WHERE memories MATCH ?`, `"${TAIL}"`), 0);
      strictEqual(count(`SELECT count(*) c FROM legacy WHERE legacy MATCH ?`, TAIL), 0);
      strictEqual(count(`SELECT count(*) c FROM notes_fts WHERE notes_fts MATCH 'acme'`), 0);
      // Normal words still match.
      strictEqual(count(`SELECT count(*) c FROM notes_fts WHERE notes_fts MATCH 'deploy'`), 3);
      strictEqual(count(`SELECT count(*) c FROM memories WHERE memories MATCH 'keep'`), 1);
      strictEqual(count(`SELECT count(*) c FROM legacy WHERE legacy MATCH 'legacy'`), 1);
      strictEqual(count(`SELECT count(*) c FROM notes_fts WHERE notes_fts MATCH 'redacted'`), 2);
      // FTS integrity checks pass.
      db.exec(`INSERT INTO notes_fts(notes_fts, rank) VALUES('integrity-check', 0)`);
      db.exec(`INSERT INTO memories(memories) VALUES('integrity-check')`);
      // The UPDATE trigger did not fire: no audit row copying the old value.
      strictEqual(count("SELECT count(*) c FROM audit"), 0);
      deepStrictEqual(
        (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name")
          .all() as { name: string }[]).map((t) => t.name),
        ["kv_au", "notes_ai", "notes_au"],
      );
      // Non-text values are untouched; text in BLOB is rewritten as BLOB.
      const rows = db.prepare("SELECT body, data, n FROM notes ORDER BY id").all() as {
        body: string;
        data: Uint8Array | null;
        n: number;
      }[];
      ok(/^deploy with \[REDACTED:github-token:[0-9a-f]{8}\] today$/.test(rows[0]!.body));
      ok(rows[0]!.data instanceof Uint8Array);
      ok(new TextDecoder().decode(rows[0]!.data!).startsWith("blob [REDACTED:github-token:"));
      deepStrictEqual([...rows[1]!.data!], [0, 1, 2, 255]);
      deepStrictEqual(rows.map((x) => Number(x.n)), [1, 2, 3]);
      strictEqual(
        Number((db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version),
        7,
      );
      strictEqual(count("SELECT count(*) c FROM loose WHERE x = 42"), 1);
    } finally {
      db.close();
    }
    // No trace of the secret in the file, free pages included.
    const raw = new TextDecoder("latin1").decode(await Deno.readFile(path)).toLowerCase();
    ok(!raw.includes(TAIL.toLowerCase()), "secret left in the database file");
    ok(!raw.includes("acme-mail"), "email left in the database file");
    const rep = r.report();
    deepStrictEqual(rep.rules.map((x) => x.id), ["email", "github-token"]);
    deepStrictEqual(rep.rules[1]!.artifacts, ["sqlite/mem.sqlite"]);
  });
});

Deno.test("redactSqlite() leaves a database without matches byte for byte", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/clean.sqlite`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('hello'), ('world');");
    db.close();
    const before = await Deno.readFile(path);
    const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
    await r.redactSqlite(path, "sqlite/clean.sqlite");
    deepStrictEqual(await Deno.readFile(path), before);
    deepStrictEqual(r.report().rules, []);
  });
});

Deno.test("redactSqliteFile() past its held-bytes budget redoes values at write time, to the same file", async () => {
  await withTmp(async (dir) => {
    // The same database redacted holding every value, and holding none (each redone when
    // written, WITHOUT ROWID and FTS tables included): byte-identical files.
    const files: Uint8Array[] = [];
    for (const heldBytes of [undefined, 0, 100]) {
      await Deno.mkdir(`${dir}/${heldBytes}`);
      const path = makeDb(`${dir}/${heldBytes}`);
      const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
      const text = (t: string): string => r.redactString(t, "a");
      const blob = (b: Uint8Array): Uint8Array | undefined => {
        const t = new TextDecoder().decode(b);
        if (b.includes(0)) return undefined;
        const out = r.redactString(t, "a");
        return out === t ? undefined : new TextEncoder().encode(out);
      };
      let redone = 0;
      await redactSqliteFile(path, text, blob, {
        ...(heldBytes === undefined ? {} : { heldBytes }),
        again: { text: (t) => (redone++, text(t)), blob: (b) => (redone++, blob(b)) },
      });
      ok(heldBytes === undefined ? redone === 0 : redone > 0, `redone ${redone}`);
      files.push(await Deno.readFile(path));
    }
    deepStrictEqual(files[1], files[0]);
    deepStrictEqual(files[2], files[0]);
  });
});

Deno.test("redactSqlite() over its held-bytes budget counts each replacement once", async () => {
  await withTmp(async (dir) => {
    // ~6 MB of UTF-16 redacted text: past the 4 MiB held, so later values are redone.
    const path = `${dir}/big.sqlite`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT)");
    const ins = db.prepare("INSERT INTO t(body) VALUES (?)");
    const pad = "lorem ipsum ".repeat(250);
    db.exec("BEGIN");
    for (let i = 0; i < 1000; i++) ins.run(`${pad} ${SECRET} ${EMAIL} ${i}`);
    db.exec("COMMIT");
    db.close();
    const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
    await r.redactSqlite(path, "sqlite/big.sqlite");
    deepStrictEqual(
      r.report().rules.map((x) => [x.id, x.count, x.artifacts]),
      [["email", 1000, ["sqlite/big.sqlite"]], ["github-token", 1000, ["sqlite/big.sqlite"]]],
    );
    strictEqual(r.replacements, 2000);
    const check = new DatabaseSync(path);
    try {
      const rows = check.prepare("SELECT body FROM t ORDER BY id").all() as { body: string }[];
      strictEqual(rows.length, 1000);
      const want = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
      rows.forEach((row, i) =>
        strictEqual(row.body, want.redactString(`${pad} ${SECRET} ${EMAIL} ${i}`, "x"))
      );
    } finally {
      check.close();
    }
  });
});

interopTest("redactSqlite(): sqlite3 .dump of the redacted copy holds no secret", [
  "sqlite3",
], async () => {
  await withTmp(async (dir) => {
    const path = makeDb(dir);
    const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
    await r.redactSqlite(path, "sqlite/mem.sqlite");
    const { text: stdout, code } = await run("sqlite3", [path, ".dump"]);
    strictEqual(code, 0);
    ok(stdout.includes("REDACTED:github-token"));
    ok(!stdout.toLowerCase().includes(TAIL.toLowerCase()));
    ok(!stdout.includes(EMAIL));
    const check = await run("sqlite3", [path, "PRAGMA integrity_check"]);
    strictEqual(check.text.trim(), "ok");
  });
});

Deno.test("redactSqlite({ vacuum: false }) leaves the rebuild to the caller; the sqlite plugin's is enough", async () => {
  await withTmp(async (dir) => {
    const free = (p: string): number => {
      const db = new DatabaseSync(p, { readOnly: true });
      try {
        return (db.prepare("PRAGMA freelist_count").get() as { freelist_count: number })
          .freelist_count;
      } finally {
        db.close();
      }
    };
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    const rebuilt = makeDb(`${dir}/a`);
    const left = makeDb(`${dir}/b`);
    ok(free(left) > 0, "the fixture has free pages (a dropped table)");
    await createRedactor({ packs: [secretsPack, piiPack], key: KEY }).redactSqlite(rebuilt, "a");
    await createRedactor({ packs: [secretsPack, piiPack], key: KEY })
      .redactSqlite(left, "a", { vacuum: false });
    strictEqual(free(rebuilt), 0);
    ok(free(left) > 0, "not rebuilt");
    // The sqlite plugin's rebuild (vacuumAndDescribe) then leaves no free page and no secret,
    // with the same rows as the redactor's own rebuild.
    const { vacuumAndDescribe } = await import("../capture/_sqlite_copy.ts");
    vacuumAndDescribe(left, "delete");
    strictEqual(free(left), 0);
    ok(!new TextDecoder("latin1").decode(await Deno.readFile(left)).includes(TAIL));
    const dump = (p: string): unknown[] => {
      const db = new DatabaseSync(p, { readOnly: true });
      try {
        return ["notes", "kv", "loose", "audit"].map((t) =>
          db.prepare(`SELECT * FROM ${t} ORDER BY 1`).all()
        );
      } finally {
        db.close();
      }
    };
    deepStrictEqual(dump(left), dump(rebuilt));
  });
});

Deno.test("redactSqliteFile() lets other tasks run while it works through the rows", async () => {
  await withTmp(async (dir) => {
    const path = `${dir}/rows.sqlite`;
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE t(x TEXT)");
    const ins = db.prepare("INSERT INTO t VALUES (?)");
    for (let i = 0; i < 120; i++) ins.run(`row ${i} ${SECRET}`);
    db.close();
    // Each value takes at least 1 ms to redact: 120 ms of work in all, past the 16 ms the
    // thread is held at most, whatever the machine's speed.
    const slow = (t: string): string => {
      const start = performance.now();
      while (performance.now() - start < 1) { /* busy */ }
      return t.replaceAll(SECRET, "[gone]");
    };
    let ticks = 0;
    let running = true;
    const tick = (): void => {
      if (!running) return;
      ticks++;
      setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    await redactSqliteFile(path, slow, () => undefined);
    const during = ticks;
    running = false;
    ok(during > 0, `timers ran ${during} times during the redaction`);
    const check = new DatabaseSync(path, { readOnly: true });
    const n = check.prepare("SELECT count(*) AS n FROM t WHERE x LIKE '%[gone]%'").get() as {
      n: number;
    };
    check.close();
    strictEqual(n.n, 120);
  });
});
