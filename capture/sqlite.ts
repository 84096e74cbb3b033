/**
 * The SQLite plugin: transactionally consistent copies of live databases, `sqlite/<name>.sqlite`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { posix } from "node:path";
import { NotFoundError, UsageError } from "../errors.ts";
import type { JsonValue, Manifest } from "../bundle/types.ts";
import type {
  ArtifactSource,
  CaptureContext,
  CapturePlugin,
  CaptureResult,
  RestoreContext,
  RestorePlanEntry,
} from "./types.ts";
import { fileArtifact, isNotFound, sha256Bytes, validateName } from "./_util.ts";

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

function pragma(db: DatabaseSync, name: string): JsonValue {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, JsonValue> | undefined;
  return row === undefined ? null : Object.values(row)[0] ?? null;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Reads the metadata of a captured copy. */
function describe(db: DatabaseSync, journalMode: string): SqliteDatabaseMeta {
  const rows = db.prepare(
    "SELECT type, name, sql FROM sqlite_master ORDER BY name",
  ).all() as { type: string; name: string; sql: string | null }[];
  const sqls = rows.flatMap((r) => (r.sql === null ? [] : [r.sql])).sort();
  const tables: Record<string, number | null> = {};
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
  return {
    user_version: Number(pragma(db, "user_version")),
    journal_mode: journalMode,
    schema_sha256: sha256Bytes(sqls.join("\n")),
    page_count: Number(pragma(db, "page_count")),
    page_size: Number(pragma(db, "page_size")),
    tables,
  };
}

/** Copies the live database into `copy` in one read transaction; returns its journal mode. */
function vacuumInto(path: string, copy: string, busyMs: number, readOnly: boolean): string {
  const live = new DatabaseSync(path, { readOnly });
  try {
    live.exec(`PRAGMA busy_timeout = ${busyMs}`);
    const mode = String(pragma(live, "journal_mode"));
    live.prepare("VACUUM INTO ?").run(copy);
    return mode;
  } finally {
    live.close();
  }
}

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
 * Creates the SQLite plugin. Each database is copied with `VACUUM INTO` inside one read
 * transaction, so the copy is transactionally consistent while other processes keep writing
 * (WAL or rollback journal); the live file is never copied raw. With a redactor, the copy is
 * redacted (`redactSqlite`) and vacuumed again so no freed page keeps a secret.
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
      let done = 0;
      for (const [db, path] of databases) {
        ctx.signal.throwIfAborted();
        const artifact = `${PREFIX}${db}${SUFFIX}`;
        let info: Deno.FileInfo;
        try {
          info = await Deno.stat(path);
        } catch (e) {
          if (!isNotFound(e)) throw e;
          throw new NotFoundError(`Cannot capture database ${db}: ${path} does not exist`, {
            hint: `Create it, or remove "${db}" from the sqlite plugin's databases`,
          });
        }
        if (!info.isFile) {
          throw new UsageError(`Cannot capture database ${db}: ${path} is not a file`);
        }
        if (info.size > 0 && !(await hasSqliteHeader(path))) {
          throw new UsageError(`Cannot capture database ${db}: ${path} is not a SQLite database`);
        }
        const copy = posix.join(ctx.staging, `${db}${SUFFIX}`);
        await Deno.remove(copy).catch(() => {});
        // With a live WAL (another connection open, or one left by a crash) read through a
        // read-only connection: it never checkpoints into the live file. Without one, a normal
        // connection is cleaner: it removes the -wal/-shm it creates when it closes (a
        // read-only one would leave them behind). Either way no content changes.
        const walExists = await Deno.stat(`${path}-wal`).then(() => true, () => false);
        let journalMode: string;
        try {
          journalMode = vacuumInto(path, copy, busy, walExists);
        } catch {
          await Deno.remove(copy).catch(() => {});
          try {
            journalMode = vacuumInto(path, copy, busy, !walExists);
          } catch (e) {
            throw new UsageError(
              `Cannot capture database ${db}: ${e instanceof Error ? e.message : e}`,
              { cause: e },
            );
          }
        }
        const ensureDelete = new DatabaseSync(copy);
        ensureDelete.exec("PRAGMA journal_mode = DELETE");
        ensureDelete.close();
        if (ctx.redactor !== undefined) await ctx.redactor.redactSqlite(copy, artifact);
        const c = new DatabaseSync(copy);
        let meta: SqliteDatabaseMeta;
        try {
          if (ctx.redactor !== undefined) c.exec("PRAGMA journal_mode = DELETE; VACUUM");
          meta = describe(c, journalMode);
        } finally {
          c.close();
        }
        metas[db] = meta as unknown as JsonValue;
        artifacts.push(await fileArtifact(artifact, copy, "sqlite"));
        ctx.progress.progress({
          phase: "capture",
          done: ++done,
          total: databases.length,
          item: artifact,
        });
      }
      return { artifacts, meta: { databases: metas } };
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
        await Deno.copyFile(posix.join(ctx.payloadDir, a.path), staged);
        await Deno.chmod(staged, 0o644);
        const mode = captured[db]?.journal_mode ?? "delete";
        if (mode === "wal") {
          const d = new DatabaseSync(staged);
          try {
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
          const d = new DatabaseSync(path, { readOnly: walExists });
          try {
            liveVersion = Number(pragma(d, "user_version"));
          } finally {
            d.close();
          }
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

/** Whether a non-empty file starts with SQLite's 16-byte header string. */
async function hasSqliteHeader(path: string): Promise<boolean> {
  const f = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(16);
    let n = 0;
    while (n < 16) {
      const r = await f.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return n === 16 && new TextDecoder().decode(buf) === "SQLite format 3\0";
  } finally {
    f.close();
  }
}
