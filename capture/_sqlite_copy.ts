/**
 * The synchronous SQLite work of the sqlite plugin (private): consistent copies of a live
 * database with `VACUUM INTO`, and the metadata of a copy. Run either on the calling thread or
 * in `_sqlite_worker.ts`, so a large copy does not block the event loop while the other
 * capture plugins work. Not exported from `mod.ts`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import type { JsonValue } from "../bundle/types.ts";
import type { SqliteDatabaseMeta } from "./sqlite.ts";
import { sha256Bytes } from "./_util.ts";

/**
 * Tunables for tests: databases whose total size is at least `workerMinBytes` are copied in a
 * worker (below it, starting a worker costs more than the copy blocks the thread). Holding a
 * WAL database or copying its file costs this thread little (the kernel copies); starting a
 * worker cost 150-250 ms before its first copy could begin (under load, more) and ~7 MiB of
 * RSS. 64 MiB: the 100 MiB benchmark's databases (42 MB) are captured here, those of the
 * 1 GiB one (590 MB) in workers. Databases to redact (with a portable redactor) that total at
 * least `redactWorkerMinBytes`, and less than `workerMinBytes`, are copied and redacted in one
 * worker: redacting the 100 MiB benchmark's took ~0.7 s of this thread, which the git and
 * memory-dir captures need meanwhile.
 */
export const sqliteCopyInternals: { workerMinBytes: number; redactWorkerMinBytes: number } = {
  workerMinBytes: 64 << 20,
  redactWorkerMinBytes: 8 << 20,
};

/** One database to copy. */
export interface CopyJob {
  /** The live database. */
  path: string;
  /** The copy to create (must not exist). */
  copy: string;
  /** `PRAGMA busy_timeout` of the live connection. */
  busyMs: number;
  /** Whether to read through a read-only connection first (a normal one is the fallback). */
  readOnly: boolean;
  /** Whether to describe the copy too (not when it is redacted first). */
  describe: boolean;
  /**
   * Whether the live file may be packed as it is instead of copied, under a read transaction
   * kept open until {@linkcode releaseHold} (only when nothing rewrites the copy: no redaction).
   */
  hold?: boolean;
}

/** The outcome of {@linkcode copyDatabase}. */
export interface CopyResult {
  /** The journal mode of the live database. */
  journalMode: string;
  /** The copy's metadata, when asked for. */
  meta?: SqliteDatabaseMeta;
  /**
   * Set when nothing was copied: the live file is consistent while the hold lasts (see
   * {@linkcode holdDatabase}); pack `size` bytes of it with the header's journal-mode bytes
   * set to rollback (see {@linkcode patchHeader}), then call {@linkcode releaseHold}.
   */
  held?: { size: number };
}

/** A copy failure the caller reports for the database (both connection kinds failed). */
export class CopyError extends Error {
  override name = "CopyError";
}

function pragma(db: DatabaseSync, name: string): JsonValue {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, JsonValue> | undefined;
  return row === undefined ? null : Object.values(row)[0] ?? null;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Bytes of a database its row counts read through a memory map (the rest through reads). */
const DESCRIBE_MMAP = 8 << 20;

/** Reads the metadata of a captured copy. */
function describe(db: DatabaseSync, journalMode: string): SqliteDatabaseMeta {
  const rows = db.prepare(
    "SELECT type, name, sql FROM sqlite_master ORDER BY name",
  ).all() as { type: string; name: string; sql: string | null }[];
  const sqls = rows.flatMap((r) => (r.sql === null ? [] : [r.sql])).sort();
  const tables: Record<string, number | null> = {};
  // Counting a table's rows reads every page of it, through SQLite's page cache: 33 ms for
  // the 100 MiB fixture's 37 MB database, on the thread every capture shares. With the first
  // 8 MiB of the file mapped, 10 ms (measured; mapping all of it, 4 ms, but the pages of a map
  // count in the process's RSS: the 1 GiB snapshot peaked at 359-430 MiB instead of 191-196). The map is taken down again after the
  // counts, so that a held database's connection does not keep it until the bundle is written.
  db.exec(`PRAGMA mmap_size = ${DESCRIBE_MMAP}`);
  try {
    for (const r of rows) {
      if (r.type !== "table") continue;
      try {
        const c = db.prepare(`SELECT count(*) AS n FROM ${quoteIdent(r.name)}`).get() as {
          n: number;
        };
        tables[r.name] = Number(c.n);
      } catch {
        tables[r.name] = null;
      }
    }
  } finally {
    db.exec("PRAGMA mmap_size = 0");
  }
  return {
    user_version: Number(pragma(db, "user_version")),
    journal_mode: journalMode,
    schema_sha256: sha256Bytes(sqls.join("\n")),
    page_count: Number(pragma(db, "page_count")),
    page_size: Number(pragma(db, "page_size")),
    tables,
  };
}

/** Reads the user_version of a live database without leaving -wal/-shm files behind. */
export function liveUserVersion(path: string, walExists: boolean): number {
  const d = new DatabaseSync(path, { readOnly: walExists });
  try {
    return Number(pragma(d, "user_version"));
  } finally {
    d.close();
  }
}

/**
 * Copies the live database into `copy` in one read transaction; returns its journal mode.
 *
 * The copy is a scratch file (packed, then discarded), so `VACUUM INTO` writes it without
 * fsync: it inherits the pager flags of the connection's `main` schema, which is set to
 * `synchronous = OFF` for the statement (same bytes). That setting would also govern what this
 * connection writes to the live database, which it does only in two cases: rolling back a hot
 * journal (a crashed writer in rollback mode) and checkpointing the WAL when it is the last
 * connection to close. So it is set only where neither can happen with it on: on a read-only
 * connection (never writes), or in WAL mode (no rollback journal) after the first read has run
 * at the default level, and it is put back before the connection closes.
 */
function vacuumInto(path: string, copy: string, busyMs: number, readOnly: boolean): string {
  const live = new DatabaseSync(path, { readOnly });
  try {
    live.exec(`PRAGMA busy_timeout = ${busyMs}`);
    const mode = String(pragma(live, "journal_mode"));
    const sync = readOnly || mode === "wal" ? Number(pragma(live, "synchronous")) : undefined;
    if (sync !== undefined) live.exec("PRAGMA synchronous = OFF");
    try {
      live.prepare("VACUUM INTO ?").run(copy);
    } finally {
      if (sync !== undefined) live.exec(`PRAGMA synchronous = ${sync}`);
    }
    return mode;
  } finally {
    live.close();
  }
}

/** Size of a file, or `undefined` if there is none. */
function sizeOf(path: string): number | undefined {
  try {
    return Deno.statSync(path).size;
  } catch {
    return undefined;
  }
}

/**
 * Starts the read transaction in which the live database's file may be copied as it is, when
 * that is a consistent copy; returns the connection in it and the journal mode, or `undefined`
 * (nothing started) when it is not:
 * - in a rollback-journal mode, the read transaction's SHARED lock keeps every writer from
 *   changing the file until it ends;
 * - in WAL mode, only when the WAL holds no frame once the read transaction has started: the
 *   transaction then reads the database file alone, and SQLite's checkpointer waits for such a
 *   reader (WAL read lock 0) before it writes into the file.
 * The file's own bytes are then copied by the kernel (free pages included; a redacted copy is
 * vacuumed afterwards), instead of `VACUUM INTO` rebuilding every table and index: ~230 ms of
 * CPU for a 53 MB database, now a file copy. End it with {@linkcode endFileCopy}.
 */
function beginFileCopy(
  path: string,
  busyMs: number,
  readOnly: boolean,
): { live: DatabaseSync; mode: string } | undefined {
  const live = new DatabaseSync(path, { readOnly });
  try {
    live.exec(`PRAGMA busy_timeout = ${busyMs}`);
    const mode = String(pragma(live, "journal_mode")).toLowerCase();
    if (!["wal", "delete", "truncate", "persist"].includes(mode)) {
      live.close();
      return undefined;
    }
    live.exec("BEGIN");
    try {
      live.prepare("SELECT count(*) FROM sqlite_master").get(); // starts the read transaction
    } catch (e) {
      live.exec("COMMIT");
      throw e;
    }
    if (mode === "wal" && (sizeOf(`${path}-wal`) ?? 0) !== 0) {
      endFileCopy(live);
      return undefined;
    }
    return { live, mode };
  } catch (e) {
    if (live.isOpen) live.close();
    throw e;
  }
}

/** Ends what {@linkcode beginFileCopy} started. */
function endFileCopy(live: DatabaseSync): void {
  try {
    live.exec("COMMIT");
  } finally {
    live.close();
  }
}

/** Connections holding a read transaction on a live database, by the job's copy path. */
const holds = new Map<string, DatabaseSync>();

/**
 * Starts a read transaction on a live database in WAL mode whose WAL holds no frame, and keeps
 * it open: the transaction reads the database file alone, and SQLite's checkpointer cannot
 * write into that file while such a reader (WAL read lock 0) lasts, so the file stays exactly
 * this snapshot until {@linkcode releaseHold}. Writers are not blocked (they append to the
 * WAL; checkpoints wait). Describes the database in the same transaction. Returns
 * `undefined` (nothing held) in any other journal mode or when the WAL has frames.
 *
 * Rollback-journal modes are not held: their reader's SHARED lock would keep writers from
 * committing for as long as the snapshot takes; they are copied under a short lock instead.
 */
function holdDatabase(job: CopyJob): CopyResult | undefined {
  const live = new DatabaseSync(job.path, { readOnly: job.readOnly });
  let kept = false;
  try {
    live.exec(`PRAGMA busy_timeout = ${job.busyMs}`);
    const mode = String(pragma(live, "journal_mode")).toLowerCase();
    if (mode !== "wal") return undefined;
    live.exec("BEGIN");
    try {
      live.prepare("SELECT count(*) FROM sqlite_master").get(); // starts the read transaction
      if ((sizeOf(`${job.path}-wal`) ?? 0) !== 0) return undefined;
      const size = Deno.statSync(job.path).size;
      const result: CopyResult = {
        journalMode: mode,
        ...(job.describe ? { meta: describe(live, mode) } : {}),
        held: { size },
      };
      holds.set(job.copy, live);
      kept = true;
      return result;
    } finally {
      if (!kept) live.exec("COMMIT");
    }
  } finally {
    if (!kept) live.close();
  }
}

/** Ends the read transaction {@linkcode copyDatabase} kept for `job.copy`, if any. */
export function releaseHold(copy: string): void {
  const live = holds.get(copy);
  if (live === undefined) return;
  holds.delete(copy);
  try {
    live.exec("COMMIT");
  } finally {
    live.close();
  }
}

/** Offset of the file format write/read version bytes (2 = WAL, 1 = rollback journal). */
const FORMAT_VERSION_AT = 18;

/**
 * Sets the journal-mode bytes of a held database's header to rollback, in `chunk`, which
 * holds the file's bytes from offset `at`: the packed database is then self-contained, as a
 * copy switched to `journal_mode = DELETE` is (the restore switches it back to WAL).
 */
export function patchHeader(chunk: Uint8Array, at: number): void {
  for (let i = FORMAT_VERSION_AT; i < FORMAT_VERSION_AT + 2; i++) {
    if (i >= at && i < at + chunk.length) chunk[i - at] = 1;
  }
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* absent */ }
}

/**
 * Copies a live database (read-only connection first when `job.readOnly`, the other kind as
 * the fallback), sets the copy's journal mode to DELETE, and describes it if asked. With
 * `job.hold`, a database in WAL mode with an empty WAL is not copied but held (see
 * {@linkcode holdDatabase}; the result has `held`).
 *
 * @throws {CopyError} If neither connection could copy the database (the second error).
 */
export function copyDatabase(job: CopyJob): CopyResult {
  const s = startCopy(job);
  if ("result" in s) return s.result;
  let failed = false;
  try {
    Deno.copyFileSync(job.path, job.copy);
  } catch {
    failed = true;
  }
  return endCopy(job, s.transaction, failed);
}

/**
 * {@linkcode copyDatabase} for the calling thread: the same steps, with the file copied by an
 * async call, so that the thread runs the other plugins' captures while the kernel copies (the
 * 100 MiB fixture's 21 MB database: the captures took 89.5 ms instead of 99, medians of ten
 * runs). The read transaction ends when this thread is next free after the copy (the other
 * plugins' loops yield every 16 ms), so a rollback-mode writer may wait that much longer.
 */
export async function copyDatabaseAsync(job: CopyJob): Promise<CopyResult> {
  const s = startCopy(job);
  if ("result" in s) return s.result;
  let failed = false;
  try {
    await Deno.copyFile(job.path, job.copy);
  } catch {
    failed = true;
  }
  return endCopy(job, s.transaction, failed);
}

/**
 * A copy up to its file copy: the result when the database is held or could not be copied as a
 * file (`VACUUM INTO`, through the other kind of connection if the first failed), else the read
 * transaction in which to copy the file.
 */
function startCopy(
  job: CopyJob,
): { result: CopyResult } | { transaction: { live: DatabaseSync; mode: string } } {
  removeQuietly(job.copy);
  const held = tryHold(job);
  if (held !== undefined) return { result: held };
  let journalMode: string;
  try {
    const t = beginFileCopy(job.path, job.busyMs, job.readOnly);
    if (t !== undefined) return { transaction: t };
    journalMode = vacuumInto(job.path, job.copy, job.busyMs, job.readOnly);
  } catch {
    journalMode = copyByOtherConnection(job);
  }
  return { result: finishCopy(job, journalMode) };
}

/** Ends the read transaction of a file copy; a failed copy falls back to `VACUUM INTO`. */
function endCopy(
  job: CopyJob,
  t: { live: DatabaseSync; mode: string },
  failed: boolean,
): CopyResult {
  try {
    endFileCopy(t.live);
  } catch {
    failed = true;
  }
  return finishCopy(job, failed ? copyByOtherConnection(job) : t.mode);
}

/** The held database of a job that asks for one, or `undefined` (then it is copied). */
function tryHold(job: CopyJob): CopyResult | undefined {
  if (!job.hold) return undefined;
  try {
    return holdDatabase(job);
  } catch {
    return undefined; // copied, with the fallbacks of a copy
  }
}

/** After a failed copy: `VACUUM INTO` through the other kind of connection. */
function copyByOtherConnection(job: CopyJob): string {
  removeQuietly(job.copy);
  try {
    return vacuumInto(job.path, job.copy, job.busyMs, !job.readOnly);
  } catch (e) {
    throw new CopyError(e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** Sets a copy's journal mode to DELETE, and describes it if asked. */
function finishCopy(job: CopyJob, journalMode: string): CopyResult {
  const c = new DatabaseSync(job.copy);
  try {
    c.exec("PRAGMA journal_mode = DELETE");
    return job.describe ? { journalMode, meta: describe(c, journalMode) } : { journalMode };
  } finally {
    c.close();
  }
}

/**
 * Rebuilds a redacted copy with `VACUUM` (no freed page keeps a secret) and describes it. The
 * copy is scratch (a failed rebuild fails the capture and the copy is discarded), so the
 * rebuild is neither fsynced nor journaled: with the rollback journal the VACUUM first wrote
 * every page of the database to it (86 MB for the fixture's two). Same bytes (a rollback
 * journal mode is not recorded in the file); about the same CPU, less wall under load.
 */
export function vacuumAndDescribe(copy: string, journalMode: string): SqliteDatabaseMeta {
  const c = new DatabaseSync(copy);
  try {
    c.exec("PRAGMA synchronous = OFF; PRAGMA journal_mode = OFF; VACUUM");
    c.exec("PRAGMA journal_mode = DELETE");
    return describe(c, journalMode);
  } finally {
    c.close();
  }
}
