// Private: rewrites the text values of a SQLite database copy, keeping FTS indexes consistent.
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { pacer } from "../_pace.ts";

const q = (name: string): string => `"${name.replaceAll('"', '""')}"`;

interface TableInfo {
  name: string;
  sql: string;
  kind: "table" | "fts" | "virtual";
  /** For FTS tables: "internal", "external" (content=<table>), "contentless" (content=''). */
  content?: "internal" | "external" | "contentless";
  /** For external-content FTS tables: the content table. */
  contentTable?: string;
}

/**
 * Redacts every TEXT value (and BLOB values that are valid UTF-8 text) of every table of the
 * database at `path`, in one transaction. Triggers of the touched tables are dropped for the
 * updates and recreated verbatim in the same transaction, so no trigger side effect runs.
 * Internal-content FTS tables are updated through the virtual table then optimized;
 * external-content FTS tables are rebuilt after their content table changed. Afterwards the
 * file is vacuumed (with secure_delete on) so no old value survives in a free page, unless
 * `options.vacuum` is false (a caller that vacuums it next: the rebuild is the longest step,
 * ~8-13 s for 1.3 GB, and once is enough).
 */
export async function redactSqliteFile(
  path: string,
  redactText: (text: string) => string,
  redactBlob: (bytes: Uint8Array) => Uint8Array | undefined,
  options: RedactSqliteOptions = {},
): Promise<void> {
  const budget = { left: options.heldBytes ?? HELD_BYTES };
  // Row by row, letting other tasks run every 16 ms (the other plugins, the agent's runtime):
  // a 1.3 GB database held the thread ~15 s otherwise. The connection is this function's own.
  const pace = pacer();
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA secure_delete = ON");
    // The database is a private copy in staging, never the live one: a crash discards it, so
    // the transaction and the VACUUM need atomicity but not durability. Without the fsyncs the
    // VACUUM of a 55 MB database takes ~0.5-0.8 s instead of 1.4-1.9 s here.
    db.exec("PRAGMA synchronous = OFF");
    const tables = listTables(db);
    const changedTables = new Set<string>();
    const pending: { table: TableInfo; updates: Update[] }[] = [];
    for (const t of tables) {
      if (t.kind === "virtual") continue;
      if (t.kind === "fts" && t.content !== "internal") continue;
      const updates = await collectUpdates(db, t, redactText, redactBlob, budget, pace);
      if (updates.length > 0) pending.push({ table: t, updates });
    }
    const fts = tables.filter((t) => t.kind === "fts");
    const freelist = Number(
      (db.prepare("PRAGMA freelist_count").get() as { freelist_count: number }).freelist_count,
    );
    if (pending.length === 0 && freelist === 0) return;
    db.exec("BEGIN IMMEDIATE");
    try {
      const touched = new Set(pending.map((p) => p.table.name));
      const triggers = db.prepare(
        "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' AND sql IS NOT NULL ORDER BY rowid",
      ).all() as { name: string; tbl_name: string; sql: string }[];
      const dropped = triggers.filter((tr) => touched.has(tr.tbl_name));
      for (const tr of dropped) db.exec(`DROP TRIGGER ${q(tr.name)}`);
      for (const { table, updates } of pending) {
        await applyUpdates(
          db,
          table,
          updates,
          options.again ?? { text: redactText, blob: redactBlob },
          pace,
        );
        changedTables.add(table.name);
      }
      for (const tr of dropped) db.exec(tr.sql);
      for (const f of fts) {
        if (f.content === "external" && f.contentTable !== undefined) {
          if (changedTables.has(f.contentTable)) {
            db.exec(`INSERT INTO ${q(f.name)}(${q(f.name)}) VALUES('rebuild')`);
          }
        } else if (f.content === "internal" && changedTables.has(f.name)) {
          db.exec(`INSERT INTO ${q(f.name)}(${q(f.name)}) VALUES('optimize')`);
        }
      }
      db.exec("COMMIT");
    } catch (e) {
      db.exec("ROLLBACK");
      throw e;
    }
    if (options.vacuum !== false) db.exec("VACUUM");
    if (
      db.prepare("SELECT name FROM sqlite_schema WHERE name = 'sqlite_stat4'").get() !==
        undefined && changedTables.size > 0
    ) {
      db.exec("ANALYZE");
    }
  } finally {
    db.close();
  }
}

/**
 * Redacted values held between the reading pass and the updates, in bytes (UTF-16 for text).
 * Past it, only the changed row's key is kept and the value is read and redacted again when it
 * is written: the held values grew with the database (6.4 MB of text for 3,000 changed rows of
 * the 500 MiB fixture's 180 MB database), now they stop at this.
 */
const HELD_BYTES = 4 << 20;

/** Options of {@linkcode redactSqliteFile}. */
export interface RedactSqliteOptions {
  /** Redacted values held in memory before later ones are redone at write time (bytes). */
  heldBytes?: number;
  /** Rebuild the file with `VACUUM` at the end. @default {true} */
  vacuum?: boolean;
  /**
   * The redaction to redo a value not held with: same output as the main functions, but
   * without counting the replacements again. Defaults to the main functions.
   */
  again?: {
    text: (text: string) => string;
    blob: (bytes: Uint8Array) => Uint8Array | undefined;
  };
}

interface Update {
  key: SQLInputValue[];
  column: string;
  /** The new value; `undefined` when it was not held (redone when written). */
  value: string | Uint8Array | undefined;
}

function listTables(db: DatabaseSync): TableInfo[] {
  const rows = db.prepare(
    "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
  ).all() as { name: string; sql: string | null }[];
  const shadow = new Set<string>();
  try {
    for (const r of db.prepare("PRAGMA table_list").all() as { name: string; type: string }[]) {
      if (r.type === "shadow") shadow.add(r.name);
    }
  } catch {
    // Older SQLite: shadow tables are recognised by name below.
  }
  const out: TableInfo[] = [];
  const vtabs: string[] = [];
  for (const r of rows) {
    const sql = r.sql ?? "";
    const m = /^\s*CREATE\s+VIRTUAL\s+TABLE\b[\s\S]*?\bUSING\s+(\w+)\s*(?:\(([\s\S]*)\))?/i.exec(
      sql,
    );
    if (m === null) {
      out.push({ name: r.name, sql, kind: "table" });
      continue;
    }
    vtabs.push(r.name);
    const mod = m[1]!.toLowerCase();
    if (mod === "fts3" || mod === "fts4" || mod === "fts5") {
      const args = m[2] ?? "";
      const c = /\bcontent\s*=\s*(?:'((?:[^']|'')*)'|"((?:[^"]|"")*)"|([^\s,)]*))/i.exec(args);
      if (c === null) out.push({ name: r.name, sql, kind: "fts", content: "internal" });
      else {
        const table = (c[1] ?? c[2] ?? c[3] ?? "").replace(/''/g, "'").replace(/""/g, '"');
        out.push(
          table === ""
            ? { name: r.name, sql, kind: "fts", content: "contentless" }
            : { name: r.name, sql, kind: "fts", content: "external", contentTable: table },
        );
      }
    } else {
      out.push({ name: r.name, sql, kind: "virtual" });
    }
  }
  const shadowSuffix =
    /_(?:content|data|idx|docsize|config|segments|segdir|stat|node|rowid|parent)$/;
  return out.filter((t) => {
    if (shadow.has(t.name)) return false;
    if (t.kind !== "table") return true;
    const s = shadowSuffix.exec(t.name);
    return !(s !== null && vtabs.includes(t.name.slice(0, s.index)));
  });
}

async function collectUpdates(
  db: DatabaseSync,
  t: TableInfo,
  redactText: (text: string) => string,
  redactBlob: (bytes: Uint8Array) => Uint8Array | undefined,
  budget: { left: number },
  pace: () => Promise<void> | undefined,
): Promise<Update[]> {
  const info = db.prepare(`PRAGMA table_xinfo(${q(t.name)})`).all() as {
    name: string;
    pk: number;
    hidden: number;
  }[];
  // hidden: 0 normal, 1 hidden column of a virtual table, 2/3 generated (cannot be updated).
  const cols = info.filter((c) => c.hidden === 0).map((c) => c.name);
  if (cols.length === 0) return [];
  const withoutRowid = t.kind === "table" && /\bWITHOUT\s+ROWID\b/i.test(t.sql);
  const keyCols = withoutRowid
    ? info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name)
    : ["rowid"];
  const keyExpr = withoutRowid ? keyCols.map(q) : ["rowid"];
  const select = [
    ...keyExpr.map((k, i) => `${k} AS k${i}`),
    ...cols.map((c, i) => `${q(c)} AS c${i}`),
  ];
  const stmt = db.prepare(`SELECT ${select.join(", ")} FROM ${q(t.name)}`);
  stmt.setReadBigInts(true);
  const updates: Update[] = [];
  // Column aliases built once, and a row's key only for a row that changes (most do not).
  const keyNames = keyExpr.map((_, i) => `k${i}`);
  const colNames = cols.map((_, i) => `c${i}`);
  for (const row of stmt.iterate() as Iterable<Record<string, unknown>>) {
    const wait = pace();
    if (wait !== undefined) await wait;
    let key: SQLInputValue[] | undefined;
    for (let i = 0; i < colNames.length; i++) {
      const v = row[colNames[i]!];
      let r: string | Uint8Array | undefined;
      if (typeof v === "string") {
        const t = redactText(v);
        if (t !== v) r = t;
      } else if (v instanceof Uint8Array) {
        r = redactBlob(v);
      }
      if (r === undefined) continue;
      key ??= keyNames.map((k) => row[k]) as SQLInputValue[];
      const size = typeof r === "string" ? 2 * r.length : r.byteLength;
      if (size <= budget.left) {
        budget.left -= size;
        updates.push({ key, column: cols[i]!, value: r });
      } else {
        budget.left = 0;
        updates.push({ key, column: cols[i]!, value: undefined });
      }
    }
  }
  (t as TableInfo & { keyExpr?: string[] }).keyExpr = keyExpr;
  return updates;
}

async function applyUpdates(
  db: DatabaseSync,
  t: TableInfo,
  updates: Update[],
  again: NonNullable<RedactSqliteOptions["again"]>,
  pace: () => Promise<void> | undefined,
): Promise<void> {
  const keyExpr = (t as TableInfo & { keyExpr?: string[] }).keyExpr ?? ["rowid"];
  const where = keyExpr.map((k) => `${k} = ?`).join(" AND ");
  const stmts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  const reads = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  for (const u of updates) {
    const wait = pace();
    if (wait !== undefined) await wait;
    let value = u.value;
    if (value === undefined) {
      // Not held: read again (only other rows, or other columns of this row, were written
      // since, with the table's triggers dropped) and redacted again, to the same value.
      let r = reads.get(u.column);
      if (r === undefined) {
        r = db.prepare(`SELECT ${q(u.column)} AS v FROM ${q(t.name)} WHERE ${where}`);
        r.setReadBigInts(true);
        reads.set(u.column, r);
      }
      const row = r.get(...u.key) as { v: unknown } | undefined;
      // (no row under that key any more: the held value's UPDATE would not match one either)
      if (row === undefined) continue;
      const v = row.v;
      if (typeof v === "string") value = again.text(v);
      else if (v instanceof Uint8Array) value = again.blob(v);
      if (value === undefined) {
        throw new Error(
          `Cannot redact ${t.name}.${u.column}: the value changed during the redaction`,
        );
      }
    }
    let s = stmts.get(u.column);
    if (s === undefined) {
      s = db.prepare(`UPDATE ${q(t.name)} SET ${q(u.column)} = ? WHERE ${where}`);
      stmts.set(u.column, s);
    }
    s.run(value, ...u.key);
  }
}
