import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { sqlitePlugin } from "../capture/sqlite.ts";
import { sqliteCopyInternals } from "../capture/_sqlite_copy.ts";
import { captureInto, restoreInto } from "./capture_helpers.ts";
import { interopTest, run, tempDir } from "./_tools.ts";

const WRITER = new URL("./fixtures/capture/sqlite_writer.ts", import.meta.url).pathname;

function makeAccounts(path: string): void {
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA journal_mode = WAL;
    CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
    CREATE TABLE log(n INTEGER);`);
  for (let i = 1; i <= 10; i++) db.prepare("INSERT INTO accounts VALUES (?, 100)").run(i);
  db.close();
}

function total(path: string): { sum: number; log: number } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const { sum } = db.prepare("SELECT sum(balance) AS sum FROM accounts").get() as { sum: number };
    const { log } = db.prepare("SELECT count(*) AS log FROM log").get() as { log: number };
    return { sum: Number(sum), log: Number(log) };
  } finally {
    db.close();
  }
}

Deno.test("sqlitePlugin() copies a WAL database consistently while another process writes", async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/ledger.db`;
  makeAccounts(path);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WRITER, path, "60000"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.equal(new TextDecoder().decode(value).trim(), "ready");
    reader.releaseLock();
    const plugin = sqlitePlugin({ databases: { ledger: path } });
    const seen = new Set<number>();
    const saved = sqliteCopyInternals.workerMinBytes;
    for (let i = 0; i < 6; i++) {
      await using t = await tempDir();
      // in this thread and in the copy worker, alternately
      sqliteCopyInternals.workerMinBytes = i % 2 === 0 ? Infinity : 0;
      const captured = await captureInto(t.path, [plugin]).finally(() => {
        sqliteCopyInternals.workerMinBytes = saved;
      });
      const copy = `${captured.payloadDir}/sqlite/ledger.sqlite`;
      const { sum, log } = total(copy);
      assert.equal(sum, 1000, `invariant broken in copy ${i}`);
      seen.add(log);
      const { staged } = await restoreInto(t.path, [plugin], captured);
      assert.deepEqual(total(staged.get(path)!), { sum, log });
    }
    // the writer really ran during the captures
    assert(seen.size > 1, `copies saw ${[...seen]}`);
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  }
});

interopTest("sqlite3 integrity_check passes on captured and restored databases", [
  "sqlite3",
], async () => {
  await using tmp = await tempDir();
  const path = `${tmp.path}/ledger.db`;
  makeAccounts(path);
  const plugin = sqlitePlugin({ databases: { ledger: path } });
  const captured = await captureInto(tmp.path, [plugin]);
  const copy = `${captured.payloadDir}/sqlite/ledger.sqlite`;
  const r = await run("sqlite3", [copy, "PRAGMA integrity_check"]);
  assert.equal(r.text.trim(), "ok", r.stderr);
  const { staged } = await restoreInto(tmp.path, [plugin], captured);
  const s = await run("sqlite3", [
    staged.get(path)!,
    "PRAGMA integrity_check; PRAGMA journal_mode",
  ]);
  assert.equal(s.text.trim(), "ok\nwal", s.stderr);
});
