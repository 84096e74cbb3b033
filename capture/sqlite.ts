/**
 * The SQLite plugin: transactionally consistent copies of live databases, `sqlite/<name>.sqlite`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { posix } from "node:path";
import { NotFoundError, UsageError } from "../errors.ts";
import type { JsonValue, Manifest, RedactionReport } from "../bundle/types.ts";
import type { PortableRedactor } from "../redact/types.ts";
import type {
  ArtifactSource,
  CaptureContext,
  CapturePlugin,
  CaptureResult,
  RestoreContext,
  RestorePlanEntry,
} from "./types.ts";
import { fileArtifact, isNotFound, readFileInto, validateName } from "./_util.ts";
import {
  copyDatabaseAsync,
  CopyError,
  type CopyJob,
  type CopyResult,
  liveUserVersion,
  patchHeader,
  releaseHold,
  sqliteCopyInternals,
  vacuumAndDescribe,
} from "./_sqlite_copy.ts";
import { fileByteStream } from "../bundle/_file_stream.ts";

/** Options of {@linkcode sqlitePlugin}. */
export interface SqlitePluginOptions {
  /** The databases to capture: name (`^[a-z0-9][a-z0-9_.-]{0,63}$`) to file path. */
  databases: Record<string, string>;
  /**
   * The newest `user_version` this runtime can open, for every database (a number) or per
   * database name. A bundle holding a newer database is refused by `check()`.
   *
   * @default {undefined} (no limit)
   */
  maxUserVersion?: Record<string, number> | number;
  /**
   * How long to wait for a lock held by a writer, in milliseconds.
   *
   * @default {10000}
   */
  busyTimeoutMs?: number;
}

/** The defaults of {@linkcode SqlitePluginOptions}. */
const defaults = {
  busyTimeoutMs: 10_000,
} satisfies Partial<SqlitePluginOptions>;

/** What the plugin records per database in `manifest.captures.sqlite.databases`. */
export interface SqliteDatabaseMeta {
  /** `PRAGMA user_version` of the captured copy. */
  user_version: number;
  /** Journal mode of the live database (`"wal"`, `"delete"`, ...), restored as such. */
  journal_mode: string;
  /** Lowercase hex SHA-256 of the sorted, newline-joined `sql` column of `sqlite_master`. */
  schema_sha256: string;
  /** `PRAGMA page_count` of the copy. */
  page_count: number;
  /** `PRAGMA page_size` of the copy. */
  page_size: number;
  /** Row count per table (`null` where a virtual table cannot be counted). */
  tables: Record<string, number | null>;
}

/** Payload prefix of the sqlite plugin. */
const PREFIX = "sqlite/";
const SUFFIX = ".sqlite";

function limitFor(
  max: Record<string, number> | number | undefined,
  name: string,
): number | undefined {
  return typeof max === "number" ? max : max?.[name];
}

/** Reads the per-database metadata the plugin stored in a manifest. */
function databasesOf(manifest: Manifest, plugin: string): Record<string, SqliteDatabaseMeta> {
  const meta = manifest.captures[plugin];
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) return {};
  const dbs = meta.databases;
  if (dbs === null || typeof dbs !== "object" || Array.isArray(dbs)) return {};
  return dbs as unknown as Record<string, SqliteDatabaseMeta>;
}

/**
 * Creates the SQLite plugin. Each database is captured inside one read transaction, so what is
 * packed is transactionally consistent while other processes keep writing (WAL or rollback
 * journal):
 * - WAL mode with no frame in the WAL, no redaction: nothing is copied. The transaction reads
 *   the file alone and SQLite's checkpointer cannot write into it while that reader lasts, so
 *   the transaction is held until the bundle is written (`CaptureResult.release`; writers go
 *   on, into the WAL) and the live file is packed, its header's journal-mode bytes set to
 *   rollback.
 * - Otherwise a copy is made in the transaction: the file itself when it stays unchanged
 *   meanwhile (a rollback-journal mode, whose SHARED lock holds writers off for the copy; the
 *   empty-WAL case when redacting), `VACUUM INTO` otherwise. With a redactor, the copy is
 *   redacted (`redactSqlite`) and vacuumed again so no freed page keeps a secret.
 * When the databases total 64 MiB or more, this runs in workers (at most two; databases of 16 MiB
 * or more are dealt out to them in turn), so the event loop (and the other capture plugins) keep
 * going meanwhile. Databases to redact that total 8 to 64 MiB are copied, redacted and vacuumed
 * on one worker when the redactor can be made again there (`Redactor.portable`: packs built in or
 * loaded from files), while the other plugins capture on the calling thread.
 *
 * Restore writes each database to its staged file target (with `-wal`, `-shm` and `-journal`
 * as companions, so stale ones do not survive) and sets the captured journal mode. `check()`
 * refuses a bundle whose database `user_version` is newer than `maxUserVersion`.
 *
 * @param options The databases and version limits.
 * @returns The plugin, named `"sqlite"`.
 * @throws {UsageError} If a database name is invalid.
 * @throws {NotFoundError} On capture, if a configured database does not exist.
 *
 * @example Capturing a database
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { sqlitePlugin } from "./sqlite.ts";
 * import { noopProgress } from "../progress.ts";
 * const dir = await Deno.makeTempDir();
 * const db = new DatabaseSync(`${dir}/long_term.db`);
 * db.exec("PRAGMA user_version = 3; CREATE TABLE facts(body TEXT); INSERT INTO facts VALUES ('x')");
 * db.close();
 * const plugin = sqlitePlugin({ databases: { long_term: `${dir}/long_term.db` } });
 * const result = await plugin.capture({
 *   staging: dir, redactor: undefined, signal: new AbortController().signal, progress: noopProgress,
 * });
 * console.log(result.artifacts[0]?.path); // "sqlite/long_term.sqlite"
 * await result.release?.(); // once the artifacts are read (the snapshotter does this)
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function sqlitePlugin(options: SqlitePluginOptions): CapturePlugin {
  const databases = Object.entries(options.databases)
    .map(([name, path]) => [name, posix.resolve(path)] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  for (const [name] of databases) validateName(name, "database");
  const busy = options.busyTimeoutMs ?? defaults.busyTimeoutMs;
  const name = "sqlite";

  return {
    name,
    version: "1",
    owns: (path: string): boolean => path.startsWith(PREFIX),

    async capture(ctx: CaptureContext): Promise<CaptureResult> {
      const artifacts: ArtifactSource[] = [];
      const metas: Record<string, JsonValue> = {};
      const jobs: CopyJob[] = [];
      const sizes: number[] = [];
      for (const [db, path] of databases) {
        ctx.signal.throwIfAborted();
        // Synchronous checks: the other plugins' capture loops yield only every 16 ms, and
        // each await here would wait for one of those turns before the copies could start.
        let info: Deno.FileInfo;
        try {
          info = Deno.statSync(path);
        } catch (e) {
          if (!isNotFound(e)) throw e;
          throw new NotFoundError(`Cannot capture database ${db}: ${path} does not exist`, {
            hint: `Create it, or remove "${db}" from the sqlite plugin's databases`,
          });
        }
        if (!info.isFile) {
          throw new UsageError(`Cannot capture database ${db}: ${path} is not a file`);
        }
        const header = info.size > 0 ? readSqliteHeader(path) : undefined;
        if (header === null) {
          throw new UsageError(`Cannot capture database ${db}: ${path} is not a SQLite database`);
        }
        // With a live WAL (another connection open, or one left by a crash) read through a
        // read-only connection: it never checkpoints into the live file. A database in WAL
        // mode without one gets a normal connection: it removes the -wal/-shm it creates when
        // it closes (a read-only one would leave them behind). A database in rollback mode
        // gets a read-only one too (it creates no file; a hot journal makes it fail, and the
        // normal connection of the fallback rolls the journal back). No content changes.
        let walExists = true;
        try {
          Deno.statSync(`${path}-wal`);
        } catch {
          walExists = false;
        }
        jobs.push({
          path,
          copy: posix.join(ctx.staging, `${db}${SUFFIX}`),
          busyMs: busy,
          readOnly: walExists || header?.wal !== true,
          describe: ctx.redactor === undefined,
          // A redacted copy is rewritten, so it must be a copy; otherwise the live file may be
          // packed as it is, under a read transaction held until the bundle is written.
          hold: ctx.redactor === undefined,
        });
        sizes.push(info.size);
      }
      // Large copies run in workers, so the copies overlap each other and the other plugins
      // keep the event loop meanwhile; small ones run here. At most MAX_WORKERS workers, the
      // databases dealt out in turn: a worker holding a database lives until the bundle is
      // written, so one per database would grow with their number.
      // Databases to redact that total at least `redactWorkerMinBytes` (and less than
      // `workerMinBytes`) are copied, redacted and vacuumed on one worker, when the redactor
      // can be made again there (`portable`): redacting them is the longest part of a redacted
      // snapshot's captures, and the other plugins capture on this thread meanwhile. Larger
      // ones are redacted here, as their copy workers' heaps would grow with the rows they read
      // (measured: 10-20 MiB more at the peak of a 1 GiB snapshot, already near 256).
      const total = sizes.reduce((a, b) => a + b, 0);
      const portable = ctx.redactor?.portable?.();
      const redactAside = portable !== undefined && ctx.redactor?.absorb !== undefined &&
        total >= sqliteCopyInternals.redactWorkerMinBytes &&
        total < sqliteCopyInternals.workerMinBytes;
      const workers: CopyRunner[] = [];
      let dealt = 0;
      const runners = jobs.map((_, i) => {
        if (redactAside) return workers[0] ??= workerRunner();
        if (
          total < sqliteCopyInternals.workerMinBytes ||
          (sizes[i]! < sqliteCopyInternals.workerMinBytes >> 2 && jobs.length > 1)
        ) return inlineRunner;
        return workers[dealt++ % MAX_WORKERS] ??= workerRunner();
      });
      const artifactOf = (i: number): string => `${PREFIX}${databases[i]![0]}${SUFFIX}`;
      // Each database's copy, redaction and vacuum, one after the other; the databases'
      // chains run at once (each runner takes one operation at a time).
      const chains = jobs.map((job, i) => {
        const runner = runners[i]!;
        const copy = runner.copy(job);
        copy.catch(() => {}); // awaited in order below
        const chain = copy.then(async (copied) => {
          if (copied.held !== undefined || ctx.redactor === undefined) return copied.meta;
          ctx.signal.throwIfAborted();
          if (redactAside) {
            ctx.redactor.absorb!(await runner.redact(job.copy, artifactOf(i), portable!));
          } else {
            // Rebuilt once, by the runner (a worker for large databases), not by the redactor
            // on this thread first.
            await ctx.redactor.redactSqlite(job.copy, artifactOf(i), { vacuum: false });
          }
          return await runner.vacuum(job.copy, copied.journalMode);
        });
        chain.catch(() => {}); // awaited in order below
        return { copy, chain };
      });
      /** Runners holding a read transaction for a live file packed as it is, by copy path. */
      const held = new Map<string, CopyRunner>();
      const releaseAll = async (): Promise<void> => {
        const holding = [...held];
        held.clear();
        await Promise.allSettled(holding.map(([copy, runner]) => runner.release(copy)));
        for (const r of new Set(holding.map(([, runner]) => runner))) r.close();
      };
      let ok = false;
      try {
        for (const [i, job] of jobs.entries()) {
          ctx.signal.throwIfAborted();
          const db = databases[i]![0];
          const artifact = artifactOf(i);
          const runner = runners[i]!;
          let copied: CopyResult;
          try {
            copied = await chains[i]!.copy;
          } catch (e) {
            if (!(e instanceof CopyError)) throw e;
            throw new UsageError(`Cannot capture database ${db}: ${e.message}`, { cause: e });
          }
          const meta = await chains[i]!.chain;
          if (copied.held !== undefined) {
            held.set(job.copy, runner);
            metas[db] = meta as unknown as JsonValue;
            artifacts.push(heldArtifact(artifact, job.path, copied.held.size));
          } else {
            metas[db] = meta as unknown as JsonValue;
            artifacts.push(await fileArtifact(artifact, job.copy, "sqlite"));
          }
          ctx.progress.progress({
            phase: "capture",
            done: i + 1,
            total: databases.length,
            item: artifact,
          });
        }
        ok = true;
      } finally {
        // Every operation has ended (a worker is terminated only between operations) before
        // the capture returns and staging can be removed. A held database keeps its runner
        // (and its read transaction) until `release`, or is released here if the capture
        // failed.
        await Promise.allSettled(chains.map((c) => c.chain));
        if (!ok) {
          for (const [i, c] of chains.entries()) {
            const r = await c.copy.catch(() => undefined);
            if (r?.held !== undefined && !held.has(jobs[i]!.copy)) {
              held.set(jobs[i]!.copy, runners[i]!);
            }
          }
          await releaseAll();
        }
        const holding = new Set(held.values());
        for (const r of new Set(runners)) if (!holding.has(r)) r.close();
      }
      return {
        artifacts,
        meta: { databases: metas },
        ...(held.size > 0 ? { release: releaseAll } : {}),
      };
    },

    check(manifest: Manifest): string[] {
      const reasons: string[] = [];
      for (const [db, meta] of Object.entries(databasesOf(manifest, name))) {
        const max = limitFor(options.maxUserVersion, db);
        if (max !== undefined && meta.user_version > max) {
          reasons.push(
            `Cannot restore database ${db}: its user_version ${meta.user_version} is newer than the ${max} this runtime supports`,
          );
        }
      }
      return reasons;
    },

    async restore(ctx: RestoreContext): Promise<void> {
      const configured = new Map(databases);
      const captured = databasesOf(ctx.manifest, name);
      for (const a of ctx.artifacts) {
        ctx.signal.throwIfAborted();
        if (!a.path.startsWith(PREFIX) || !a.path.endsWith(SUFFIX)) continue;
        const db = a.path.slice(PREFIX.length, -SUFFIX.length);
        const path = configured.get(db);
        if (path === undefined) {
          ctx.progress.warn(
            `Cannot restore database ${db}: it is not configured in this runtime; skipped`,
          );
          continue;
        }
        const staged = await ctx.stage({
          path,
          type: "file",
          companions: [`${path}-wal`, `${path}-shm`, `${path}-journal`],
        });
        await placePayload(
          posix.join(ctx.payloadDir, a.path),
          staged,
          ctx.payloadMovable === true,
        );
        await Deno.chmod(staged, 0o644);
        const mode = captured[db]?.journal_mode ?? "delete";
        if (mode === "wal") {
          // The staged copy is not live: switching it to WAL need not fsync it (with the
          // default synchronous=FULL, SQLite flushes the whole database file first: 140-300 ms
          // for the fixture's 55 MB one). Nothing else in staging is fsynced either; a crash
          // before the swap discards staging, and SQLite writes the same header either way.
          const d = new DatabaseSync(staged);
          try {
            d.exec("PRAGMA synchronous = OFF");
            d.exec("PRAGMA journal_mode = WAL");
          } finally {
            d.close();
          }
        }
        ctx.progress.progress({ phase: "restore", done: 1, item: a.path });
      }
      for (const [db] of databases) {
        if (!ctx.artifacts.some((a) => a.path === `${PREFIX}${db}${SUFFIX}`)) {
          ctx.progress.warn(`Database ${db} is not in the bundle; the live one is kept`);
        }
      }
    },

    async plan(ctx): Promise<RestorePlanEntry[]> {
      const configured = new Map(databases);
      const captured = databasesOf(ctx.manifest, name);
      const plan: RestorePlanEntry[] = [];
      for (const a of ctx.artifacts) {
        const db = a.path.slice(PREFIX.length, -SUFFIX.length);
        const path = configured.get(db);
        if (path === undefined) {
          plan.push({ target: a.path, action: "skip (database not configured)" });
          continue;
        }
        let liveVersion: number | undefined;
        try {
          await Deno.stat(path);
          const walExists = await Deno.stat(`${path}-wal`).then(() => true, () => false);
          liveVersion = liveUserVersion(path, walExists);
        } catch {
          liveVersion = undefined;
        }
        plan.push({
          target: path,
          action: liveVersion === undefined ? "create database" : "replace database",
          detail: `user_version ${liveVersion ?? "-"} → ${captured[db]?.user_version ?? "?"}`,
        });
      }
      return plan;
    },
  };
}

/**
 * Puts an extracted database at its staging path: renamed when the payload is movable (the
 * engine's own extraction; no 2nd copy of the bytes), copied otherwise or when the rename
 * crosses file systems (`EXDEV`: the store's state dir and the target on different disks).
 * Durability is the same either way: the switch to WAL below fsyncs the staged file, whoever
 * wrote its pages.
 */
async function placePayload(from: string, to: string, movable: boolean): Promise<void> {
  if (movable) {
    try {
      await Deno.rename(from, to);
      return;
    } catch (e) {
      if ((e as { code?: unknown })?.code !== "EXDEV") throw e;
    }
  }
  await Deno.copyFile(from, to);
}

/** Runs the synchronous copies, here or in a worker. */
interface CopyRunner {
  copy(job: CopyJob): Promise<CopyResult>;
  /** Redacts a copy with a redactor made from `portable`, not vacuumed; its report. */
  redact(copy: string, artifact: string, portable: PortableRedactor): Promise<RedactionReport>;
  vacuum(copy: string, journalMode: string): Promise<SqliteDatabaseMeta>;
  /** Ends the read transaction a `held` copy keeps open. */
  release(copy: string): Promise<void>;
  close(): void;
}

const inlineRunner: CopyRunner = {
  copy: (job) => copyDatabaseAsync(job),
  // (Here the snapshot's redactor itself is used.)
  redact: () => Promise.reject(new Error("the inline runner does not redact")),
  vacuum: (copy, mode) => Promise.resolve().then(() => vacuumAndDescribe(copy, mode)),
  release: (copy) => Promise.resolve().then(() => releaseHold(copy)),
  close() {},
};

/** Copy workers at most (each an isolate of ~20 MiB, alive while it holds a database). */
const MAX_WORKERS = 2;

/**
 * A runner backed by one worker, one operation at a time (calls are queued). An operation is never interrupted
 * (the worker is terminated only between operations, with every connection closed), so an
 * abort takes effect after the current copy, as it would on this thread.
 */
function workerRunner(): CopyRunner {
  const worker = new Worker(new URL("./_sqlite_worker.ts", import.meta.url), { type: "module" });
  let id = 0;
  let pending: { id: number; resolve(v: unknown): void; reject(e: Error): void } | undefined;
  /** Calls are queued: the worker answers one operation at a time. */
  let tail: Promise<unknown> = Promise.resolve();
  let broken: Error | undefined;
  worker.onmessage = (ev: MessageEvent) => {
    const m = ev.data as { id: number; result?: unknown; error?: string; copyError?: boolean };
    const p = pending;
    if (p === undefined || p.id !== m.id) return;
    pending = undefined;
    if (m.error === undefined) p.resolve(m.result);
    else p.reject(m.copyError ? new CopyError(m.error) : new Error(m.error));
  };
  worker.onerror = (ev: ErrorEvent) => {
    ev.preventDefault();
    broken = new Error(`the SQLite copy worker failed: ${ev.message}`);
    pending?.reject(broken);
    pending = undefined;
  };
  const send = <T>(msg: Record<string, unknown>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (broken !== undefined) return reject(broken);
      pending = { id: ++id, resolve: resolve as (v: unknown) => void, reject };
      worker.postMessage({ ...msg, id });
    });
  const call = <T>(msg: Record<string, unknown>): Promise<T> => {
    const p = tail.then(() => send<T>(msg));
    tail = p.catch(() => {});
    return p;
  };
  return {
    copy: (job) => call<CopyResult>({ op: "copy", job }),
    redact: (copy, artifact, redactor) =>
      call<RedactionReport>({ op: "redact", copy, artifact, redactor }),
    vacuum: (copy, journalMode) => call<SqliteDatabaseMeta>({ op: "vacuum", copy, journalMode }),
    release: (copy) => call<void>({ op: "release", copy }),
    close: () => worker.terminate(),
  };
}

/**
 * A held database packed from its live file (see `copyDatabase`): `size` bytes, the header's
 * journal-mode bytes set to rollback. A byte stream, so the bundle writer reads it into its
 * own buffer; a file that grew shows as one byte more than declared.
 */
function heldArtifact(path: string, src: string, size: number): ArtifactSource {
  return {
    path,
    kind: "sqlite",
    size,
    readInto(into: Uint8Array): number {
      const n = readFileInto(src, into);
      patchHeader(into.subarray(0, n), 0);
      return n;
    },
    async open(): Promise<ReadableStream<Uint8Array>> {
      return fileByteStream(await Deno.open(src, { read: true }), 1 << 20, patchHeader);
    },
  };
}

/**
 * Reads the first 20 bytes of a non-empty file: `null` unless they start with SQLite's header
 * string; otherwise whether the file format bytes (18, 19) say WAL mode.
 */
function readSqliteHeader(path: string): { wal: boolean } | null {
  const buf = new Uint8Array(20);
  const n = readFileInto(path, buf);
  if (n < 16 || new TextDecoder().decode(buf.subarray(0, 16)) !== "SQLite format 3\0") {
    return null;
  }
  return { wal: n === 20 && buf[18] === 2 && buf[19] === 2 };
}
